//! How the API answers an [`Error`]: a status code and Svix's JSON shapes
//! (`{code, detail}`, or `{code, detail: [{loc, msg, type}]}` for 422). Only
//! server-side failures are logged, and internals are never shown.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

pub use crate::service::{Error, FieldError, Result};

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let (status, body) = match &self {
            Error::NotFound(what) => (
                StatusCode::NOT_FOUND,
                json!({"code": "not_found", "detail": format!("{what} not found")}),
            ),
            Error::Conflict(detail) => (
                StatusCode::CONFLICT,
                json!({"code": "conflict", "detail": detail}),
            ),
            Error::Validation(errors) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                json!({"code": "validation", "detail": errors}),
            ),
            Error::BadRequest { code, detail } => (
                StatusCode::BAD_REQUEST,
                json!({"code": code, "detail": detail}),
            ),
            Error::Unauthorized(detail) => (
                StatusCode::UNAUTHORIZED,
                json!({"code": "authentication_failed", "detail": detail}),
            ),
            Error::Forbidden(detail) => (
                StatusCode::FORBIDDEN,
                json!({"code": "forbidden", "detail": detail}),
            ),
            Error::PayloadTooLarge(limit) => {
                let body = json!({"code": "payload_too_large",
                       "detail": format!("request body is larger than the limit of {limit} bytes (HERALD_MAX_BODY_BYTES)")});
                // What is left of the body is not read: this connection ends.
                return (
                    StatusCode::PAYLOAD_TOO_LARGE,
                    [(axum::http::header::CONNECTION, "close")],
                    Json(body),
                )
                    .into_response();
            }
            Error::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                json!({"code": "unavailable", "detail": "the database is unavailable; try again shortly"}),
            ),
            Error::Internal(msg) => {
                tracing::error!(error = %msg, "internal error");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    json!({"code": "internal", "detail": "internal server error"}),
                )
            }
            Error::TooManyRequests {
                detail,
                retry_after,
            } => {
                let seconds = herald_core::schedule::retry_seconds(*retry_after);
                let body = json!({"code": "rate_limited", "detail": detail});
                return (
                    StatusCode::TOO_MANY_REQUESTS,
                    [(axum::http::header::RETRY_AFTER, seconds.to_string())],
                    Json(body),
                )
                    .into_response();
            }
        };
        (status, Json(body)).into_response()
    }
}
