//! One error type for every handler. It maps to a status code and Svix's JSON
//! shapes (`{code, detail}`, or `{code, detail: [{loc, msg, type}]}` for 422), logs
//! only server-side failures, and never shows internals to the client.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use herald_store::StoreError;
use serde::Serialize;
use serde_json::json;

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
pub enum ApiError {
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
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn field(path: &[&str], msg: impl Into<String>) -> ApiError {
        ApiError::Validation(vec![FieldError::body(path, msg)])
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::NotFound => ApiError::NotFound("resource"),
            StoreError::Conflict(why) => ApiError::Conflict(why.to_string()),
            StoreError::Unavailable(msg) => {
                tracing::error!(error = %msg, "store unavailable");
                ApiError::Unavailable
            }
            StoreError::Corrupt(msg) => ApiError::Internal(msg),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, body) = match &self {
            ApiError::NotFound(what) => (
                StatusCode::NOT_FOUND,
                json!({"code": "not_found", "detail": format!("{what} not found")}),
            ),
            ApiError::Conflict(detail) => (
                StatusCode::CONFLICT,
                json!({"code": "conflict", "detail": detail}),
            ),
            ApiError::Validation(errors) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                json!({"code": "validation", "detail": errors}),
            ),
            ApiError::BadRequest { code, detail } => (
                StatusCode::BAD_REQUEST,
                json!({"code": code, "detail": detail}),
            ),
            ApiError::Unauthorized(detail) => (
                StatusCode::UNAUTHORIZED,
                json!({"code": "authentication_failed", "detail": detail}),
            ),
            ApiError::Forbidden(detail) => (
                StatusCode::FORBIDDEN,
                json!({"code": "forbidden", "detail": detail}),
            ),
            ApiError::PayloadTooLarge(limit) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                json!({"code": "payload_too_large",
                       "detail": format!("request body is larger than the limit of {limit} bytes (HERALD_MAX_BODY_BYTES)")}),
            ),
            ApiError::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                json!({"code": "unavailable", "detail": "the database is unavailable; try again shortly"}),
            ),
            ApiError::Internal(msg) => {
                tracing::error!(error = %msg, "internal error");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    json!({"code": "internal", "detail": "internal server error"}),
                )
            }
        };
        (status, Json(body)).into_response()
    }
}
