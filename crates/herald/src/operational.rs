//! Operational webhooks: Herald tells an operator's endpoints (Slack,
//! PagerDuty, their own service) what happens to their tenants' endpoints, in
//! Svix's event shapes — `endpoint.created`, `.updated`, `.deleted`,
//! `.disabled` (with its trigger), `.enabled`, and per delivery
//! `message.attempt.failing` (its fourth failure), `.exhausted` (retries used
//! up) and `.recovered` (a success after `failing` was sent).
//!
//! They travel the same durable path as any message: each organisation's
//! operational endpoints are the endpoints of one application kept under an
//! organisation of its own ([`ops_org`]), which no list of the organisation
//! shows; an event is a message to it, signed with each operational
//! endpoint's secret, retried and logged. Events about operational endpoints'
//! own deliveries are not sent (no loops).
//!
//! Used by the service layer (changes made through the API or the portal)
//! and by the deliverer (what deliveries do); it reaches only the store.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use herald_core::id::{new_id, IdPrefix};
use herald_store::{
    Application, Attempt, DisabledBy, Endpoint, Job, Next, Store, StoreError, Targets,
};
use serde_json::{json, Value};

use crate::dispatch::Wake;
use crate::service::messages::{new_message, NewMessage};

/// The uid of the application holding an organisation's operational
/// endpoints (inside [`ops_org`]).
pub const OPS_APP_UID: &str = "operational-webhooks";
const OPS_ORG_SUFFIX: &str = "/operational";

/// Svix sends `message.attempt.failing` on a delivery's fourth failure.
pub const FAILING_AFTER: i64 = 4;

/// The organisation under which `org_id`'s operational endpoints are kept.
pub fn ops_org(org_id: &str) -> String {
    format!("{org_id}{OPS_ORG_SUFFIX}")
}

/// Whether `org_id` is such an organisation.
pub fn is_ops_org(org_id: &str) -> bool {
    org_id.ends_with(OPS_ORG_SUFFIX)
}

pub struct Operational {
    store: Arc<dyn Store>,
    wake: Arc<Wake>,
}

impl Operational {
    pub fn new(store: Arc<dyn Store>, wake: Arc<Wake>) -> Operational {
        Operational { store, wake }
    }

    /// The application holding `org_id`'s operational endpoints, made on
    /// first use.
    pub async fn app(&self, org_id: &str) -> Result<Application, StoreError> {
        let org = ops_org(org_id);
        if let Some(app) = self.store.get_app(&org, OPS_APP_UID).await? {
            return Ok(app);
        }
        let now = Utc::now();
        let app = Application {
            id: new_id(IdPrefix::App),
            org_id: org.clone(),
            uid: Some(OPS_APP_UID.into()),
            name: "Operational webhooks".into(),
            metadata: json!({}),
            throttle_rate: None,
            created_at: now,
            updated_at: now,
        };
        match self.store.create_app(&app).await {
            Ok(()) => Ok(app),
            // Made meanwhile by another request or node.
            Err(StoreError::Conflict(_)) => self
                .store
                .get_app(&org, OPS_APP_UID)
                .await?
                .ok_or(StoreError::NotFound),
            Err(e) => Err(e),
        }
    }

    /// `endpoint.created`, `.updated`, `.deleted` or `.enabled` about `ep` of
    /// `app`.
    pub async fn endpoint_event(&self, event_type: &str, app: &Application, ep: &Endpoint) {
        let data = endpoint_data(app, ep);
        self.emit(&app.org_id, event_type, data).await;
    }

    /// `endpoint.disabled`, saying whether a person or Herald did it (Svix's
    /// `trigger`: `manual`, `automatic`), Herald's reason (`gone`, `failing`),
    /// and since when it failed if it did.
    pub async fn endpoint_disabled(
        &self,
        app: &Application,
        ep: &Endpoint,
        by: DisabledBy,
        failing_since: Option<DateTime<Utc>>,
    ) {
        let mut data = endpoint_data(app, ep);
        data["trigger"] = json!(if by.automatic() {
            "automatic"
        } else {
            "manual"
        });
        data["reason"] = json!(by.as_str());
        if let Some(since) = failing_since {
            data["failSince"] = json!(since);
        }
        self.emit(&app.org_id, "endpoint.disabled", data).await;
    }

    /// What one attempt of a delivery means for the operator, if anything:
    /// its fourth failure, its last, or a success after the fourth failure.
    pub async fn after_attempt(&self, job: &Job, attempt: &Attempt, next: &Next) {
        if is_ops_org(&job.org_id) || attempt.skipped.is_some() {
            return;
        }
        let made = job.attempts + 1;
        let event = match next {
            Next::Done if job.attempts >= FAILING_AFTER => "message.attempt.recovered",
            Next::GiveUp => "message.attempt.exhausted",
            Next::RetryAt(_) if made == FAILING_AFTER => "message.attempt.failing",
            _ => return,
        };
        let app_uid = match self.store.get_app(&job.org_id, &job.app_id).await {
            Ok(app) => app.and_then(|a| a.uid),
            Err(_) => None,
        };
        let data = json!({
            "appId": job.app_id,
            "appUid": app_uid,
            "msgId": job.msg_id,
            "endpointId": job.endpoint_id,
            "lastAttempt": {
                "id": attempt.id,
                "responseStatusCode": attempt.response_status_code,
                "timestamp": attempt.created_at,
            },
        });
        self.emit(&job.org_id, event, data).await;
    }

    /// Queues `{type, data}` to the organisation's operational endpoints, if
    /// it has any. Never fails its caller: what went wrong is logged.
    async fn emit(&self, org_id: &str, event_type: &str, data: Value) {
        if is_ops_org(org_id) {
            return;
        }
        let app = match self.store.get_app(&ops_org(org_id), OPS_APP_UID).await {
            Ok(Some(app)) => app,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(error = %e, event_type, "cannot send an operational webhook");
                return;
            }
        };
        let payload = json!({"type": event_type, "data": data, "timestamp": Utc::now()});
        let own = NewMessage::own(event_type.to_string(), payload.to_string());
        let msg = new_message(&app, own);
        match self.store.create_message(&msg, &Targets::Matching).await {
            Ok(endpoints) => self.wake.endpoints(endpoints),
            Err(e) => {
                tracing::warn!(error = %e, event_type, "cannot send an operational webhook")
            }
        }
    }
}

fn endpoint_data(app: &Application, ep: &Endpoint) -> Value {
    json!({
        "appId": app.id,
        "appUid": app.uid,
        "endpointId": ep.id,
        "endpointUid": ep.uid,
    })
}
