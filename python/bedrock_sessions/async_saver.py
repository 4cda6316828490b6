"""``bedrock_sessions.async_saver``: where code written against ``langgraph_checkpoint_aws.async_saver`` finds
``AsyncBedrockSessionSaver`` after changing the package name alone (the class lives in :mod:`bedrock_sessions.saver`)."""

from .saver import AsyncBedrockSessionSaver

__all__ = ["AsyncBedrockSessionSaver"]
