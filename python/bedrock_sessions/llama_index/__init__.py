"""LlamaIndex memory over Bedrock sessions (or the embedded store with the same model).

* :class:`SessionDBChatStore` — an ``AsyncDBChatStore`` for ``llama_index.core.memory.Memory``
  (``Memory.from_defaults(session_id=key, chat_store=store)``): ACTIVE/ARCHIVED status, ids, FIFO operations.
* :class:`SessionChatStore` — a ``BaseChatStore`` for ``ChatMemoryBuffer`` and the chat engines (sync and async).
* :class:`SessionWorkflowStore` — saves and restores a paused workflow's ``Context`` per key and run.

The classes here adapt LlamaIndex's interfaces (and ``model_dump`` / ``model_validate`` of its messages); the log,
its generations, batching, retries and encoding (layout "li1") are the Rust core's (``src/llama/``). Layout, costs
and choices: docs/llama-index.md.
"""

from ._chat import SessionChatStore, SessionDBChatStore
from ._common import DEFAULT_MAX_STEP_BYTES, LAYOUT, MAX_IMAGE_BYTES, MAX_IMAGES_PER_STEP
from ._workflow import SessionWorkflowStore

__all__ = [
    "SessionChatStore",
    "SessionDBChatStore",
    "SessionWorkflowStore",
    "LAYOUT",
    "DEFAULT_MAX_STEP_BYTES",
    "MAX_IMAGE_BYTES",
    "MAX_IMAGES_PER_STEP",
]
