"""``bedrock_sessions.session``: where code written against ``langgraph_checkpoint_aws.session`` finds the replaced
saver's session client after changing the package name alone (the classes live in :mod:`bedrock_sessions.compat`)."""

from .compat import AsyncBedrockAgentRuntimeSessionClient, BedrockAgentRuntimeSessionClient

__all__ = ["BedrockAgentRuntimeSessionClient", "AsyncBedrockAgentRuntimeSessionClient"]
