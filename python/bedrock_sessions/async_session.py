"""``bedrock_sessions.async_session``: where code written against ``langgraph_checkpoint_aws.async_session`` finds
the replaced async saver's session client after changing the package name alone (see :mod:`bedrock_sessions.compat`)."""

from .compat import AsyncBedrockAgentRuntimeSessionClient

__all__ = ["AsyncBedrockAgentRuntimeSessionClient"]
