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

/// An error of a session operation: an AWS code and a message for people.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Error {
    pub code: ErrorCode,
    pub message: String,
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
        }
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
        if let rusqlite::Error::SqliteFailure(f, _) = &e {
            if matches!(
                f.code,
                rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
            ) {
                return Error::new(
                    ErrorCode::Throttling,
                    format!("the session store is busy: {e}"),
                );
            }
        }
        Error::internal(format!("session store failure: {e}"))
    }
}

pub type Result<T> = std::result::Result<T, Error>;
