//! What every portal request needs, whichever page or form it is: the
//! session's application and its endpoints (anything else is 404), the fields
//! the layout shows, a submitted form, and its CSRF check.

use herald_store::{Application, Endpoint, EventType, Message};
use serde_json::{json, Map, Value};

use super::session::Session;
use super::{PortalError, PortalResult};
use crate::catalog::all_event_types;
use crate::service::Herald;

/// The fields every page's layout needs, merged into its context.
pub fn base(
    session: &Session,
    app: Option<&Application>,
    title: &str,
    nav: &str,
) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("title".into(), json!(title));
    m.insert("nav".into(), json!(nav));
    m.insert("csrf".into(), json!(session.csrf));
    m.insert("operator".into(), json!(session.operator));
    m.insert("read_only".into(), json!(session.read_only));
    m.insert("app_name".into(), json!(app.map(|a| a.name.as_str())));
    m.insert("theme".into(), json!(session.theme));
    m
}

pub fn with(mut base: Map<String, Value>, extra: Value) -> Value {
    if let Value::Object(extra) = extra {
        base.extend(extra);
    }
    Value::Object(base)
}

/// The application the session looks at.
pub async fn app_of(state: &Herald, session: &Session) -> PortalResult<Application> {
    let id = session.app.as_deref().ok_or(PortalError::ChooseApp)?;
    state
        .store
        .get_app(&session.org, id)
        .await?
        .filter(|a| a.id == id)
        .ok_or(PortalError::NotFound)
}

/// An endpoint of that application, by id; anything else is 404.
pub async fn endpoint_of(state: &Herald, app: &Application, id: &str) -> PortalResult<Endpoint> {
    state
        .store
        .get_endpoint(&app.id, id)
        .await?
        .filter(|e| e.id == id)
        .ok_or(PortalError::NotFound)
}

/// A message of that application, by id (not by eventId: a page's address
/// names one message); anything else is 404.
pub async fn message_of(state: &Herald, app: &Application, id: &str) -> PortalResult<Message> {
    state
        .store
        .get_message(&app.id, id)
        .await?
        .filter(|m| m.id == id)
        .ok_or(PortalError::NotFound)
}

/// The organisation's event types that this session can subscribe to: not
/// archived, and behind no feature flag or one its link carried.
pub async fn catalog_types(state: &Herald, session: &Session) -> PortalResult<Vec<EventType>> {
    let mut types = org_types(state, session).await?;
    types.retain(|t| offered(session, t));
    Ok(types)
}

/// All the organisation's event types, archived and flagged ones too.
pub async fn org_types(state: &Herald, session: &Session) -> PortalResult<Vec<EventType>> {
    all_event_types(state.store.as_ref(), &session.org)
        .await
        .map_err(|e| PortalError::Internal(format!("{e:#}")))
}

/// Whether the session may subscribe to `t`.
pub fn offered(session: &Session, t: &EventType) -> bool {
    !t.archived && session.sees_flag(t.feature_flag.as_deref())
}

/// A submitted form: its fields in order, repeated names kept.
pub struct FormData(Vec<(String, String)>);

impl FormData {
    pub fn parse(body: &[u8]) -> FormData {
        FormData(
            url::form_urlencoded::parse(body)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .collect()
    }
}

/// The prologue of every form POST: the form, its CSRF check, and the
/// session's application.
pub async fn posted(
    state: &Herald,
    session: &Session,
    body: &[u8],
) -> PortalResult<(FormData, Application)> {
    let form = FormData::parse(body);
    check_csrf(session, &form)?;
    let app = app_of(state, session).await?;
    Ok((form, app))
}

pub fn check_csrf(session: &Session, form: &FormData) -> PortalResult<()> {
    if session.csrf_ok(form.get("csrf")) {
        Ok(())
    } else {
        Err(PortalError::Csrf)
    }
}
