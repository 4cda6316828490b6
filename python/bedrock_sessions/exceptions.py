"""Errors of the session API, shaped like botocore's ``ClientError``.

Every error an operation raises is a :class:`BedrockSessionsError` carrying the AWS error code:
``err.response["Error"]["Code"]``, ``err.response["Error"]["Message"]``, ``err.operation_name``.
When botocore is installed the base class is also a ``botocore.exceptions.ClientError``, so code
written against boto3 (``except ClientError``) keeps working unchanged.
"""

from __future__ import annotations

from typing import Any, TypeAlias

try:  # botocore is optional: without it the base is a plain Exception with the same attributes.
    from botocore.exceptions import ClientError as _ClientErrorBase
except ImportError:  # pragma: no cover - exercised only without botocore
    _ClientErrorBase = Exception  # type: ignore[assignment,misc]

__all__ = [
    "BedrockSessionsError",
    "ValidationException",
    "ResourceNotFoundException",
    "ConflictException",
    "ServiceQuotaExceededException",
    "AccessDeniedException",
    "ThrottlingException",
    "InternalServerException",
    "ERROR_CLASSES",
]


class BedrockSessionsError(_ClientErrorBase):  # type: ignore[misc,valid-type]
    """Base of every error returned by a session operation."""

    response: dict[str, Any]
    operation_name: str
    #: What the error is about, where one code covers several cases (set by the native core):
    #: ``"AlreadyExists"``, ``"SessionNotFound"``, ``"InvocationNotFound"``, ``"StepNotFound"``, or None.
    reason: str | None = None

    def __init__(self, error_response: dict[str, Any], operation_name: str) -> None:
        self.response = error_response
        self.operation_name = operation_name
        error = error_response.get("Error", {})
        self.code: str = error.get("Code", "Unknown")
        self.message: str = error.get("Message", "")
        msg = f"An error occurred ({self.code}) when calling the {operation_name} operation: {self.message}"
        if _ClientErrorBase is Exception:
            Exception.__init__(self, msg)
        else:
            # botocore builds the same message from the same two arguments.
            _ClientErrorBase.__init__(self, error_response, operation_name)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.response, self.operation_name), {"reason": self.reason})

    def __str__(self) -> str:
        return f"An error occurred ({self.code}) when calling the {self.operation_name} operation: {self.message}"


class ValidationException(BedrockSessionsError, ValueError):
    """The request breaks a pattern, limit or type of the API (HTTP 400)."""


class ResourceNotFoundException(BedrockSessionsError, LookupError):
    """The session, invocation or step does not exist (HTTP 404)."""


class ConflictException(BedrockSessionsError):
    """The request conflicts with the resource's state: ended session, duplicate id... (HTTP 409)."""


class ServiceQuotaExceededException(BedrockSessionsError):
    """A service quota would be exceeded, e.g. 1000 invocation steps per session (HTTP 400)."""


class AccessDeniedException(BedrockSessionsError):
    """The caller may not perform the operation (HTTP 403)."""


class ThrottlingException(BedrockSessionsError):
    """Too many requests, or the store is busy; safe to retry (HTTP 429)."""


class InternalServerException(BedrockSessionsError):
    """The service or the store failed (HTTP 500)."""


ERROR_CLASSES: dict[str, type[BedrockSessionsError]] = {
    cls.__name__: cls
    for cls in (
        ValidationException,
        ResourceNotFoundException,
        ConflictException,
        ServiceQuotaExceededException,
        AccessDeniedException,
        ThrottlingException,
        InternalServerException,
    )
}


def _from_core(
    code: str, message: str, operation: str, request_id: str, status: int, reason: str | None = None
) -> BedrockSessionsError:
    """Builds the exception for an error of the native core (called from Rust)."""
    response = {
        "Error": {"Code": code, "Message": message},
        "ResponseMetadata": {
            "RequestId": request_id,
            "HTTPStatusCode": status,
            "HTTPHeaders": {"x-amzn-errortype": code, "x-amzn-requestid": request_id},
            "RetryAttempts": 0,
        },
        "message": message,
    }
    cls = ERROR_CLASSES.get(code, BedrockSessionsError)
    exc = cls(response, operation)
    exc.reason = reason
    return exc


#: Any of this module's errors (the name inside `_ClientExceptions`, where the class's own name is an attribute).
_AnyError: TypeAlias = BedrockSessionsError


class _ClientExceptions:
    """``client.exceptions``: the error classes by code, as on a boto3 client."""

    BedrockSessionsError = BedrockSessionsError
    ClientError = BedrockSessionsError
    ValidationException = ValidationException
    ResourceNotFoundException = ResourceNotFoundException
    ConflictException = ConflictException
    ServiceQuotaExceededException = ServiceQuotaExceededException
    AccessDeniedException = AccessDeniedException
    ThrottlingException = ThrottlingException
    InternalServerException = InternalServerException

    def from_code(self, code: str) -> type[_AnyError]:
        return ERROR_CLASSES.get(code, BedrockSessionsError)


client_exceptions = _ClientExceptions()
