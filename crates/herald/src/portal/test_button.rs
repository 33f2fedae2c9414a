//! The endpoint page's Test button. Its POST sends the example and answers
//! 303 See Other to the endpoint page, which shows the outcome (so a reload
//! sends nothing again): `?tested={msg}` when a message was made (the page
//! reads its attempt from the store), or a short-lived flash cookie with the
//! reason when nothing was sent (a refusal carries text a query string should
//! not: anyone can write a link).

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::Response;
use herald_store::{Application, Endpoint, MessageStatus};
use serde::Serialize;

use super::endpoint::last_attempt_of;
use super::pages::see_other;
use super::request::{endpoint_of, posted};
use super::session::Session;
use super::PortalResult;
use crate::service::endpoints::send_test;
use crate::service::Herald;

/// The flash cookie: why a Test sent nothing, read once by the next page.
const FLASH: &str = "herald_flash";
/// Bytes of the reason kept in the cookie at most (it is a sentence or two).
const FLASH_MAX: usize = 600;

/// What the Test button got back, shown in `#test-result`.
#[derive(Serialize)]
pub(super) struct TestResult {
    pub(super) event_type: String,
    status: String,
    ok: bool,
    response: String,
    duration_ms: Option<i64>,
    msg_id: Option<String>,
}

/// `POST /portal/endpoints/{id}/test`: the same path as the API's
/// send-example, then 303 to the endpoint page that shows the outcome.
pub async fn test(
    State(state): State<Herald>,
    session: Session,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> PortalResult<Response> {
    let (form, app) = posted(&state, &session, &body).await?;
    let ep = endpoint_of(&state, &app, &id).await?;
    let event_type = form.get("event_type").unwrap_or_default().to_string();
    match send_test(&state, &app, &ep, event_type.clone(), None, None).await {
        Ok((msg, _)) => Ok(see_other(&format!(
            "/portal/endpoints/{}?tested={}#test-result",
            ep.id, msg.id
        ))),
        Err(e) => {
            let mut response = see_other(&format!(
                "/portal/endpoints/{}?tested=none&test_type={}#test-result",
                ep.id,
                url::form_urlencoded::byte_serialize(event_type.as_bytes()).collect::<String>()
            ));
            let reason = super::form::error_message(&e);
            response
                .headers_mut()
                .insert(header::SET_COOKIE, flash_cookie(&state, &reason));
            Ok(response)
        }
    }
}

/// The outcome the endpoint page shows for `?tested=...`: a message's
/// attempt on this endpoint, or the flash cookie's reason.
pub(super) async fn outcome(
    state: &Herald,
    app: &Application,
    ep: &Endpoint,
    tested: &str,
    event_type: Option<&str>,
    headers: &HeaderMap,
) -> PortalResult<Option<TestResult>> {
    if tested == "none" {
        let response = read_flash(headers)
            .unwrap_or_else(|| "The test was not sent. Send it again to see why.".to_string());
        return Ok(Some(TestResult {
            event_type: event_type.unwrap_or_default().to_string(),
            status: "not sent".into(),
            ok: false,
            response,
            duration_ms: None,
            msg_id: None,
        }));
    }
    let Some(msg) = state
        .store
        .get_message(&app.id, tested)
        .await?
        .filter(|m| m.id == tested)
    else {
        return Ok(None);
    };
    let last = last_attempt_of(state.store.as_ref(), &app.id, &msg.id, &ep.id).await?;
    // No attempt yet is worth saying only of a Test's own message (its
    // payload says `"test": true`): any other message id shows nothing.
    let is_test = serde_json::from_str::<serde_json::Value>(&msg.payload)
        .is_ok_and(|p| p.get("test") == Some(&serde_json::Value::Bool(true)));
    if last.is_none() && !is_test {
        return Ok(None);
    }
    Ok(Some(match last {
        Some(a) => TestResult {
            event_type: msg.event_type,
            status: if a.response_status_code > 0 {
                a.response_status_code.to_string()
            } else {
                "not sent".into()
            },
            ok: a.status == MessageStatus::Success,
            response: a.response,
            duration_ms: Some(a.response_duration_ms),
            msg_id: Some(msg.id),
        },
        None => TestResult {
            event_type: msg.event_type,
            status: "not sent".into(),
            ok: false,
            response: "Herald could not send it right now; it will be delivered shortly.".into(),
            duration_ms: None,
            msg_id: Some(msg.id),
        },
    }))
}

/// The cookie that carries why a Test sent nothing to the next page (a
/// minute at most; the page that shows it removes it).
fn flash_cookie(state: &Herald, text: &str) -> HeaderValue {
    let mut end = text.len().min(FLASH_MAX);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let value: String = url::form_urlencoded::byte_serialize(&text.as_bytes()[..end]).collect();
    let attributes = if !state.config.portal_frame_ancestors.is_empty() {
        "; SameSite=None; Secure"
    } else if state.config.base_url().starts_with("https://") {
        "; SameSite=Lax; Secure"
    } else {
        "; SameSite=Lax"
    };
    HeaderValue::from_str(&format!(
        "{FLASH}={value}; HttpOnly; Path=/portal; Max-Age=60{attributes}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("herald_flash=; Path=/portal; Max-Age=0"))
}

/// The `Set-Cookie` value that removes the flash once shown.
pub(super) fn clear_flash() -> HeaderValue {
    HeaderValue::from_static("herald_flash=; HttpOnly; Path=/portal; Max-Age=0")
}

fn read_flash(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| pair.trim().strip_prefix(FLASH)?.strip_prefix('='))
        .filter(|v| !v.is_empty())
        .and_then(|v| {
            url::form_urlencoded::parse(format!("f={v}").as_bytes())
                .next()
                .map(|(_, text)| text.into_owned())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flash_is_read_back_from_the_cookie_header() {
        let mut headers = HeaderMap::new();
        let value: String =
            url::form_urlencoded::byte_serialize("Too many tests; wait 3 s.".as_bytes()).collect();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("herald_portal=abc; {FLASH}={value}")).unwrap(),
        );
        assert_eq!(
            read_flash(&headers).as_deref(),
            Some("Too many tests; wait 3 s.")
        );
        assert_eq!(read_flash(&HeaderMap::new()), None);
    }
}
