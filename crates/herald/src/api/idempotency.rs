//! `idempotency-key` on POSTs: the first response to a key is kept and replayed
//! to every retry with the same key, so a client that lost an answer can ask
//! again without sending an event twice. Keys are scoped to the caller and path.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use herald_store::IdempotencyState;

use super::extract::{drain, principal_of};
use crate::service::Error;
use crate::service::Herald;

const MAX_KEY_LEN: usize = 256;

pub async fn layer(State(state): State<Herald>, req: Request, next: Next) -> Response {
    if req.method() != Method::POST {
        return next.run(req).await;
    }
    let Some(key) = req
        .headers()
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
    else {
        return next.run(req).await;
    };
    if key.is_empty() || key.len() > MAX_KEY_LEN {
        return Error::Validation(vec![super::error::FieldError {
            loc: vec!["header".into(), "idempotency-key".into()],
            msg: format!("must be 1 to {MAX_KEY_LEN} characters"),
            kind: "value_error",
        }])
        .into_response();
    }
    let (parts, body) = req.into_parts();
    // Without a valid token the handler answers 401; nothing to remember.
    let Ok(who) = principal_of(&parts, &state).await else {
        return next.run(Request::from_parts(parts, body)).await;
    };
    let scope = format!(
        "{}:{}:{}",
        who.org_id,
        who.app_id.as_deref().unwrap_or(""),
        parts.uri.path()
    );
    match state
        .store
        .idempotency_begin(&scope, &key, Utc::now())
        .await
    {
        Err(e) => Error::from(e).into_response(),
        // An answer given without the handler: the body is read and dropped
        // first, so a client still writing it reads the answer.
        Ok(IdempotencyState::Done {
            status,
            body: answer,
        }) => {
            drain(body).await;
            replay(status, answer)
        }
        Ok(IdempotencyState::InProgress) => {
            drain(body).await;
            Error::Conflict("a request with this idempotency-key is still in progress".into())
                .into_response()
        }
        Ok(IdempotencyState::New) => {
            let response = next.run(Request::from_parts(parts, body)).await;
            let (parts, body) = response.into_parts();
            let bytes = match axum::body::to_bytes(body, usize::MAX).await {
                Ok(b) => b,
                Err(e) => {
                    let _ = state.store.idempotency_abort(&scope, &key).await;
                    return Error::Internal(format!("reading response body: {e}")).into_response();
                }
            };
            let status = parts.status.as_u16();
            let kept = if parts.status.is_server_error() {
                state.store.idempotency_abort(&scope, &key).await
            } else {
                state
                    .store
                    .idempotency_finish(&scope, &key, status, &bytes)
                    .await
            };
            if let Err(e) = kept {
                tracing::warn!(error = %e, "could not record the idempotent response");
                let _ = state.store.idempotency_abort(&scope, &key).await;
            }
            Response::from_parts(parts, Body::from(bytes))
        }
    }
}

fn replay(status: u16, body: Vec<u8>) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    let has_body = !body.is_empty();
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    if has_body {
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
    } else {
        headers.remove(header::CONTENT_TYPE);
    }
    headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
    // As the first answer: a body over the limit ends the connection.
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}
