//! The [`Store`](crate::Store) impl, part by part: it only lists where each method is written (the files
//! of this module, or the backend's hook for what each database does its own
//! way), and which writes make the store's cache forget what they change.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::cache::{Destination, EventTypes};
use crate::model::*;
use crate::{Credentials, MessageLog, Queue, Resources, Result, Upkeep};

use super::{Backend, Claim, Claiming, SqlStore};

#[async_trait]
impl<DB: Backend> Resources for SqlStore<DB> {
    async fn create_app(&self, app: &Application) -> Result<()> {
        let done = self.create_app(app).await;
        self.cache.forget_org(&app.org_id);
        done
    }

    async fn get_app(&self, org_id: &str, id_or_uid: &str) -> Result<Option<Application>> {
        self.get_app(org_id, id_or_uid).await
    }

    async fn list_apps(&self, org_id: &str, page: &Page) -> Result<PageOf<Application>> {
        self.list_apps(org_id, page).await
    }

    async fn search_apps(
        &self,
        org_id: &str,
        query: &str,
        page: &Page,
    ) -> Result<PageOf<Application>> {
        self.search_apps(org_id, query, page).await
    }

    async fn update_app(&self, app: &Application) -> Result<()> {
        let done = self.update_app(app).await;
        self.cache.forget_org(&app.org_id);
        done
    }

    async fn delete_app(&self, org_id: &str, id: &str) -> Result<()> {
        let done = self.delete_app(org_id, id).await;
        self.cache.forget_org_and_endpoints(org_id);
        done
    }

    async fn create_event_type(&self, et: &EventType) -> Result<()> {
        let done = self.create_event_type(et).await;
        self.cache.forget_org(&et.org_id);
        done
    }

    async fn get_event_type(&self, org_id: &str, name: &str) -> Result<Option<EventType>> {
        self.get_event_type(org_id, name).await
    }

    async fn list_event_types(
        &self,
        org_id: &str,
        include_archived: bool,
        page: &Page,
    ) -> Result<PageOf<EventType>> {
        self.list_event_types(org_id, include_archived, page).await
    }

    async fn update_event_type(&self, et: &EventType) -> Result<()> {
        let done = self.update_event_type(et).await;
        self.cache.forget_org(&et.org_id);
        done
    }

    async fn delete_event_type(&self, org_id: &str, name: &str) -> Result<()> {
        let done = self.delete_event_type(org_id, name).await;
        self.cache.forget_org(org_id);
        done
    }

    async fn create_endpoint(&self, ep: &Endpoint, secret: &str) -> Result<()> {
        self.create_endpoint(ep, secret).await
    }

    async fn get_endpoint(&self, app_id: &str, id_or_uid: &str) -> Result<Option<Endpoint>> {
        self.get_endpoint(app_id, id_or_uid).await
    }

    async fn list_endpoints(&self, app_id: &str, page: &Page) -> Result<PageOf<Endpoint>> {
        self.list_endpoints(app_id, page).await
    }

    async fn update_endpoint(&self, ep: &Endpoint) -> Result<()> {
        let done = self.update_endpoint(ep).await;
        self.cache.forget_endpoint(&ep.id);
        done
    }

    async fn delete_endpoint(&self, app_id: &str, id: &str) -> Result<()> {
        let done = self.delete_endpoint(app_id, id).await;
        self.cache.forget_endpoint(id);
        done
    }

    async fn secrets(&self, endpoint_id: &str, now: Timestamp) -> Result<Vec<SecretKey>> {
        self.secrets(endpoint_id, now).await
    }

    async fn rotate_secret(
        &self,
        endpoint_id: &str,
        new_key: &str,
        old_until: Timestamp,
        now: Timestamp,
    ) -> Result<()> {
        let done = self
            .rotate_secret(endpoint_id, new_key, old_until, now)
            .await;
        self.cache.forget_endpoint(endpoint_id);
        done
    }

    async fn save_task(&self, task: &BackgroundTask) -> Result<()> {
        self.save_task(task).await
    }

    async fn get_task(&self, org_id: &str, id: &str) -> Result<Option<BackgroundTask>> {
        self.get_task(org_id, id).await
    }

    async fn list_tasks(
        &self,
        org_id: &str,
        status: Option<&str>,
        task: Option<&str>,
        page: &Page,
    ) -> Result<PageOf<BackgroundTask>> {
        self.list_tasks(org_id, status, task, page).await
    }

    async fn cached_app(
        &self,
        org_id: &str,
        id_or_uid: &str,
        max_age: Duration,
    ) -> Result<Option<Application>> {
        self.cached_app(org_id, id_or_uid, max_age).await
    }

    async fn cached_event_types(
        &self,
        org_id: &str,
        max_age: Duration,
    ) -> Result<Option<EventTypes>> {
        self.cached_event_types(org_id, max_age).await
    }
}

#[async_trait]
impl<DB: Backend> MessageLog for SqlStore<DB> {
    async fn create_message(&self, msg: &Message, targets: &Targets) -> Result<Vec<String>> {
        self.create_message(msg, targets).await
    }

    async fn get_message(&self, app_id: &str, id_or_event_id: &str) -> Result<Option<Message>> {
        self.get_message(app_id, id_or_event_id).await
    }

    async fn list_messages(
        &self,
        app_id: &str,
        filter: &ListFilter,
        page: &Page,
    ) -> Result<PageOf<Message>> {
        self.list_messages(app_id, filter, page).await
    }

    async fn expunge_message(&self, app_id: &str, msg_id: &str) -> Result<()> {
        self.expunge_message(app_id, msg_id).await
    }

    async fn expunge_all_contents(&self, app_id: &str) -> Result<u64> {
        self.expunge_all_contents(app_id).await
    }

    async fn replay_missing(
        &self,
        app_id: &str,
        endpoint_id: &str,
        since: Timestamp,
        until: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<u64> {
        self.replay_missing(app_id, endpoint_id, since, until, now)
            .await
    }

    async fn bulk_replay(
        &self,
        app_id: &str,
        endpoint_id: &str,
        since: Timestamp,
        until: Option<Timestamp>,
        filter: &ListFilter,
        now: Timestamp,
    ) -> Result<u64> {
        self.bulk_replay(app_id, endpoint_id, since, until, filter, now)
            .await
    }

    async fn expunge_attempt(&self, app_id: &str, msg_id: &str, attempt_id: &str) -> Result<()> {
        self.expunge_attempt(app_id, msg_id, attempt_id).await
    }

    async fn resend(
        &self,
        app_id: &str,
        msg_id: &str,
        endpoint_id: &str,
        now: Timestamp,
    ) -> Result<()> {
        self.resend(app_id, msg_id, endpoint_id, now).await
    }

    async fn recover(
        &self,
        endpoint_id: &str,
        since: Timestamp,
        until: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<u64> {
        self.recover(endpoint_id, since, until, now).await
    }

    async fn endpoint_stats(
        &self,
        endpoint_id: &str,
        since: Option<Timestamp>,
        until: Option<Timestamp>,
    ) -> Result<EndpointStats> {
        self.endpoint_stats(endpoint_id, since, until).await
    }

    async fn get_attempt(
        &self,
        app_id: &str,
        msg_id: &str,
        attempt_id: &str,
    ) -> Result<Option<Attempt>> {
        self.get_attempt(app_id, msg_id, attempt_id).await
    }

    async fn list_attempts_by_endpoint(
        &self,
        app_id: &str,
        endpoint_id: &str,
        filter: &ListFilter,
        page: &Page,
    ) -> Result<PageOf<Attempt>> {
        self.list_attempts_by_endpoint(app_id, endpoint_id, filter, page)
            .await
    }

    async fn list_attempts_by_msg(
        &self,
        app_id: &str,
        msg_id: &str,
        filter: &ListFilter,
        page: &Page,
    ) -> Result<PageOf<Attempt>> {
        self.list_attempts_by_msg(app_id, msg_id, filter, page)
            .await
    }

    async fn list_attempted_destinations(
        &self,
        app_id: &str,
        msg_id: &str,
        page: &Page,
    ) -> Result<PageOf<(Endpoint, Delivery)>> {
        self.list_attempted_destinations(app_id, msg_id, page).await
    }

    async fn list_attempted_messages(
        &self,
        app_id: &str,
        endpoint_id: &str,
        filter: &ListFilter,
        page: &Page,
    ) -> Result<PageOf<(Message, Delivery)>> {
        self.list_attempted_messages(app_id, endpoint_id, filter, page)
            .await
    }
}

#[async_trait]
impl<DB: Backend> Queue for SqlStore<DB> {
    async fn claim_due(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
        skip_endpoints: &[String],
    ) -> Result<Vec<Job>> {
        let what = Claiming::Due {
            since: None,
            limit,
            skip_endpoints,
        };
        DB::claim(
            self,
            Claim {
                what,
                now,
                lease_until,
            },
        )
        .await
    }

    async fn claim_recent(
        &self,
        now: Timestamp,
        since: Timestamp,
        lease_until: Timestamp,
        limit: u32,
        skip_endpoints: &[String],
    ) -> Result<Vec<Job>> {
        let what = Claiming::Due {
            since: Some(since),
            limit,
            skip_endpoints,
        };
        DB::claim(
            self,
            Claim {
                what,
                now,
                lease_until,
            },
        )
        .await
    }

    async fn claim_delivery(
        &self,
        msg_id: &str,
        endpoint_id: &str,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> Result<Option<Job>> {
        let what = Claiming::One {
            msg_id,
            endpoint_id,
        };
        // At most one row matches: a delivery's key.
        Ok(DB::claim(
            self,
            Claim {
                what,
                now,
                lease_until,
            },
        )
        .await?
        .pop())
    }

    async fn release_claim(
        &self,
        msg_id: &str,
        endpoint_id: &str,
        lease_until: Timestamp,
        due: Timestamp,
        slotted: bool,
    ) -> Result<()> {
        self.release_claim(msg_id, endpoint_id, lease_until, due, slotted)
            .await
    }

    async fn reserve_slot(
        &self,
        endpoint_id: &str,
        interval: std::time::Duration,
        now: Timestamp,
    ) -> Result<Option<Timestamp>> {
        self.reserve_slot(endpoint_id, interval, now).await
    }

    async fn hold_endpoint(&self, endpoint_id: &str, until: Timestamp) -> Result<()> {
        self.hold_endpoint(endpoint_id, until).await
    }

    async fn disable_endpoint(
        &self,
        endpoint_id: &str,
        by: DisabledBy,
        now: Timestamp,
    ) -> Result<bool> {
        let done = self.disable_endpoint(endpoint_id, by, now).await;
        self.cache.forget_endpoint(endpoint_id);
        done
    }

    async fn pause_endpoint(&self, endpoint_id: &str, until: Timestamp) -> Result<()> {
        self.pause_endpoint(endpoint_id, until).await
    }

    async fn record_attempt(&self, attempt: &Attempt, next: &Next) -> Result<()> {
        self.record_attempt(attempt, next).await
    }

    async fn recover_after_restart(&self) -> Result<u64> {
        DB::recover_after_restart(self).await
    }

    async fn wait_for_work(&self, timeout: Duration) {
        DB::wait_for_work(self, timeout).await
    }

    async fn next_due(&self) -> Result<Option<Timestamp>> {
        self.next_due().await
    }

    async fn destination(
        &self,
        app_id: &str,
        endpoint_id: &str,
        max_age: Duration,
    ) -> Result<Option<Arc<Destination>>> {
        self.destination(app_id, endpoint_id, max_age).await
    }
}

#[async_trait]
impl<DB: Backend> Credentials for SqlStore<DB> {
    async fn idempotency_begin(
        &self,
        scope: &str,
        key: &str,
        now: Timestamp,
    ) -> Result<IdempotencyState> {
        self.idempotency_begin(scope, key, now).await
    }

    async fn idempotency_finish(
        &self,
        scope: &str,
        key: &str,
        status: u16,
        body: &[u8],
    ) -> Result<()> {
        self.idempotency_finish(scope, key, status, body).await
    }

    async fn idempotency_abort(&self, scope: &str, key: &str) -> Result<()> {
        self.idempotency_abort(scope, key).await
    }

    async fn create_api_token(&self, token: &ApiToken) -> Result<()> {
        self.create_api_token(token).await
    }

    async fn list_api_tokens(&self, org_id: Option<&str>) -> Result<Vec<ApiToken>> {
        self.list_api_tokens(org_id).await
    }

    async fn revoke_api_token(&self, id: &str, now: Timestamp) -> Result<ApiToken> {
        self.revoke_api_token(id, now).await
    }

    async fn revoked_api_tokens(&self, now: Timestamp) -> Result<Vec<String>> {
        self.revoked_api_tokens(now).await
    }

    async fn create_portal_grant(&self, grant: &PortalGrant) -> Result<()> {
        self.create_portal_grant(grant).await
    }

    async fn use_portal_grant(&self, id: &str, now: Timestamp) -> Result<Option<PortalGrant>> {
        self.use_portal_grant(id, now).await
    }

    async fn get_portal_grant(&self, id: &str) -> Result<Option<PortalGrant>> {
        self.get_portal_grant(id).await
    }

    async fn expire_portal_grants(&self, app_id: &str, at: Timestamp) -> Result<u64> {
        self.expire_portal_grants(app_id, at).await
    }

    async fn end_portal_grant(&self, id: &str, now: Timestamp) -> Result<()> {
        self.end_portal_grant(id, now).await
    }
}

#[async_trait]
impl<DB: Backend> Upkeep for SqlStore<DB> {
    async fn ping(&self) -> Result<()> {
        self.ping().await
    }

    async fn read_sealed(
        &self,
        column: SealedColumn,
        current_key: &str,
        limit: u32,
    ) -> Result<Vec<SealedValue>> {
        self.read_sealed(column, current_key, limit).await
    }

    async fn replace_sealed(
        &self,
        column: SealedColumn,
        owner: &str,
        old: &[u8],
        new: &[u8],
    ) -> Result<bool> {
        self.replace_sealed(column, owner, old, new).await
    }

    async fn meta(&self, name: &str) -> Result<Option<String>> {
        self.meta(name).await
    }

    async fn set_meta(&self, name: &str, value: &str) -> Result<()> {
        self.set_meta(name, value).await
    }

    async fn gauges(&self, now: Timestamp) -> Result<Gauges> {
        self.gauges(now).await
    }

    async fn prune(
        &self,
        now: Timestamp,
        attempts_before: Timestamp,
        batch: u32,
    ) -> Result<PruneReport> {
        self.prune(now, attempts_before, batch).await
    }
}
