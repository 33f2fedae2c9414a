//! The one error of what Herald does for a caller, whoever asked: the API
//! renders it as a status and Svix's JSON (`api/error.rs`), the portal as a
//! page or a message beside a form field. It says what is wrong and where,
//! never the database's or the server's internals.

use herald_store::StoreError;
use serde::Serialize;

/// One bad field: where it is (`["body", "url"]`) and what is wrong with it.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct FieldError {
    pub loc: Vec<String>,
    pub msg: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
}

impl FieldError {
    pub fn body(path: &[&str], msg: impl Into<String>) -> FieldError {
        FieldError::at("body", path, msg)
    }

    pub fn query(name: &str, msg: impl Into<String>) -> FieldError {
        FieldError::at("query", &[name], msg)
    }

    fn at(root: &str, path: &[&str], msg: impl Into<String>) -> FieldError {
        let mut loc = vec![root.to_string()];
        loc.extend(path.iter().map(|s| s.to_string()));
        FieldError {
            loc,
            msg: msg.into(),
            kind: "value_error",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Conflict(String),
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    #[error("{detail}")]
    BadRequest { code: &'static str, detail: String },
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    #[error("the database is unavailable")]
    Unavailable,
    #[error("internal error: {0}")]
    Internal(String),
    /// 429 with `Retry-After`: the caller is over a limit and may try again.
    #[error("{detail}")]
    TooManyRequests {
        detail: String,
        retry_after: std::time::Duration,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn field(path: &[&str], msg: impl Into<String>) -> Error {
        Error::Validation(vec![FieldError::body(path, msg)])
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Error {
        match e {
            StoreError::NotFound => Error::NotFound("resource"),
            StoreError::Conflict(why) => Error::Conflict(why.to_string()),
            StoreError::Unavailable(msg) => {
                tracing::error!(error = %msg, "store unavailable");
                Error::Unavailable
            }
            StoreError::Corrupt(msg) => Error::Internal(msg),
        }
    }
}

impl From<crate::dispatch::limits::TestRefused> for Error {
    fn from(refused: crate::dispatch::limits::TestRefused) -> Error {
        Error::TooManyRequests {
            detail: refused.to_string(),
            retry_after: refused.retry_after(),
        }
    }
}
