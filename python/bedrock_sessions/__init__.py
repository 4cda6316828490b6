"""bedrock-sessions: agent state in Amazon Bedrock Session Management, or in an embedded store with the
same model, over a Rust core.

>>> from bedrock_sessions import SessionClient
>>> client = SessionClient.local("state.db")
>>> session = client.create_session(sessionMetadata={"user": "ana"})
"""

import atexit as _atexit

from . import exceptions
from ._core import SCHEMA_VERSION, ManualClock, __version__
from ._core import quiesce as _quiesce
from .client import AsyncSessionClient, SessionClient
from .compat import AsyncBedrockAgentRuntimeSessionClient, BedrockAgentRuntimeSessionClient

# Async calls complete on the core's threads, which hand results to Python: let them finish before the
# interpreter finalizes (a thread attaching during finalization aborts the process).
_atexit.register(_quiesce, 5.0)
from .exceptions import BedrockSessionsError

try:  # the saver needs langgraph (pip install 'bedrock-sessions[langgraph]')
    from .saver import AsyncBedrockSessionSaver, BedrockSessionSaver
except ImportError as _err:  # pragma: no cover - exercised only without langgraph
    _saver_import_error = _err

    def __getattr__(name: str) -> object:
        if name in ("BedrockSessionSaver", "AsyncBedrockSessionSaver"):
            raise ImportError(f"{name} needs langgraph: pip install 'bedrock-sessions[langgraph]' ({_saver_import_error})")
        raise AttributeError(name)

__all__ = [
    "AsyncBedrockAgentRuntimeSessionClient",
    "AsyncBedrockSessionSaver",
    "AsyncSessionClient",
    "BedrockAgentRuntimeSessionClient",
    "BedrockSessionSaver",
    "BedrockSessionsError",
    "ManualClock",
    "SCHEMA_VERSION",
    "SessionClient",
    "__version__",
    "exceptions",
]
