"""bedrock-sessions: agent state in Amazon Bedrock Session Management, or in an embedded store with the
same model, over a Rust core.

>>> from bedrock_sessions import SessionClient
>>> client = SessionClient.local("state.db")
>>> session = client.create_session(sessionMetadata={"user": "ana"})
"""

from . import exceptions
from ._core import SCHEMA_VERSION, ManualClock, __version__
from .client import AsyncSessionClient, SessionClient
from .exceptions import BedrockSessionsError

__all__ = [
    "AsyncSessionClient",
    "BedrockSessionsError",
    "ManualClock",
    "SCHEMA_VERSION",
    "SessionClient",
    "__version__",
    "exceptions",
]
