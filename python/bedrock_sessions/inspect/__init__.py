"""Looking inside a store: sessions and their raw steps, LangGraph threads, a thread's checkpoint history (forks
included), a checkpoint's state as a person reads it, the difference of two checkpoints; and moving threads between
stores (export, import, copy, migrate). Everything is plain JSON-able data: the ``bedrock-sessions`` command prints it
as tables, or as is with ``--json``. Values are decoded through LangGraph's own serializer."""

from ._backend import Store, open_store
from ._inspector import Inspector
from ._transfer import copy_threads, export_threads, import_threads

__all__ = ["Inspector", "Store", "open_store", "export_threads", "import_threads", "copy_threads"]
