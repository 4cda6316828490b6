//! One error type for the whole core. Each variant is an AWS error code of the session API, so the
//! same value becomes a botocore-style exception in Python and an HTTP error response in the server.

use std::fmt;

/// The AWS error codes of the Bedrock session API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    Validation,
    ResourceNotFound,
    Conflict,
    ServiceQuotaExceeded,
    AccessDenied,
    Throttling,
    InternalServer,
}

impl ErrorCode {
    /// The code as AWS spells it (`x-amzn-ErrorType`, `err.response["Error"]["Code"]`).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Validation => "ValidationException",
            ErrorCode::ResourceNotFound => "ResourceNotFoundException",
            ErrorCode::Conflict => "ConflictException",
            ErrorCode::ServiceQuotaExceeded => "ServiceQuotaExceededException",
            ErrorCode::AccessDenied => "AccessDeniedException",
            ErrorCode::Throttling => "ThrottlingException",
            ErrorCode::InternalServer => "InternalServerException",
        }
    }

    /// The HTTP status the service answers with for this code.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::Validation | ErrorCode::ServiceQuotaExceeded => 400,
            ErrorCode::AccessDenied => 403,
            ErrorCode::ResourceNotFound => 404,
            ErrorCode::Conflict => 409,
            ErrorCode::Throttling => 429,
            ErrorCode::InternalServer => 500,
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "ValidationException" => ErrorCode::Validation,
            "ResourceNotFoundException" => ErrorCode::ResourceNotFound,
            "ConflictException" => ErrorCode::Conflict,
            "ServiceQuotaExceededException" => ErrorCode::ServiceQuotaExceeded,
            "AccessDeniedException" => ErrorCode::AccessDenied,
            "ThrottlingException" => ErrorCode::Throttling,
            "InternalServerException" => ErrorCode::InternalServer,
            _ => return None,
        })
    }
}

/// What an error is about, where our own code must tell cases of one AWS code apart (a missing session
/// from a missing invocation, an id that exists from a closed session). The embedded stores set it where
/// they raise the error; for the service's errors it is read from the message in one place,
/// [`Reason::from_service`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Reason {
    #[default]
    Other,
    /// ConflictException: an invocation or step id that is taken.
    AlreadyExists,
    /// ResourceNotFoundException: the session.
    SessionNotFound,
    /// ResourceNotFoundException: the invocation.
    InvocationNotFound,
    /// ResourceNotFoundException: the step.
    StepNotFound,
}

impl Reason {
    /// The name Python sees (`exc.reason`), or `None` for [`Reason::Other`].
    pub fn name(self) -> Option<&'static str> {
        match self {
            Reason::Other => None,
            Reason::AlreadyExists => Some("AlreadyExists"),
            Reason::SessionNotFound => Some("SessionNotFound"),
            Reason::InvocationNotFound => Some("InvocationNotFound"),
            Reason::StepNotFound => Some("StepNotFound"),
        }
    }

    /// The reason of an error the service (or any endpoint speaking its API) returned, from its code and
    /// message: the only place that reads the service's messages, which are no contract.
    pub fn from_service(code: ErrorCode, message: &str) -> Reason {
        match code {
            ErrorCode::Conflict if message.contains("already exists") => Reason::AlreadyExists,
            ErrorCode::ResourceNotFound if message.starts_with("Session") => {
                Reason::SessionNotFound
            }
            ErrorCode::ResourceNotFound if message.starts_with("Invocation step") => {
                Reason::StepNotFound
            }
            ErrorCode::ResourceNotFound if message.starts_with("Invocation") => {
                Reason::InvocationNotFound
            }
            _ => Reason::Other,
        }
    }
}

/// An error of a session operation: an AWS code, a message for people, and what it is about.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Error {
    pub code: ErrorCode,
    pub message: String,
    pub reason: Reason,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

impl Error {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Error {
            code,
            message: message.into(),
            reason: Reason::Other,
        }
    }
    pub fn with_reason(mut self, reason: Reason) -> Self {
        self.reason = reason;
        self
    }
    /// The same error with `prefix: ` before its message (code and reason kept).
    pub fn context(mut self, prefix: impl fmt::Display) -> Self {
        self.message = format!("{prefix}: {}", self.message);
        self
    }
    pub fn is_already_exists(&self) -> bool {
        self.reason == Reason::AlreadyExists
    }
    pub fn is_session_not_found(&self) -> bool {
        self.reason == Reason::SessionNotFound
    }
    pub fn is_invocation_not_found(&self) -> bool {
        self.reason == Reason::InvocationNotFound
    }
    pub fn validation(message: impl Into<String>) -> Self {
        Error::new(ErrorCode::Validation, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Error::new(ErrorCode::ResourceNotFound, message)
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        Error::new(ErrorCode::Conflict, message)
    }
    pub fn quota(message: impl Into<String>) -> Self {
        Error::new(ErrorCode::ServiceQuotaExceeded, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Error::new(ErrorCode::InternalServer, message)
    }
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        // A busy database after the busy timeout is a throttle the caller may retry, not a bug.
        if is_busy(&e) {
            return Error::new(
                ErrorCode::Throttling,
                format!("the session store is busy: {e}"),
            );
        }
        Error::internal(format!("session store failure: {e}"))
    }
}

/// SQLite's "busy" or "locked": another connection holds the lock.
pub(crate) fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _)
        if matches!(f.code, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked))
}

pub type Result<T> = std::result::Result<T, Error>;
