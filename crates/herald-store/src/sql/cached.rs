//! The reads kept in the store's [`Cache`](crate::cache::Cache): each answers
//! from it when its entry is younger than the caller allows, and otherwise
//! reads the database and keeps what it read.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use herald_core::signing::EndpointSecret;

use crate::cache::{Destination, EventTypes};
use crate::model::{Application, Page};
use crate::Result;

use super::{Backend, SqlStore};

/// Event types of one organisation read in one go; an organisation with more
/// is not kept (the caller reads the one it needs).
const EVENT_TYPES_AT_ONCE: u32 = 1000;

impl<DB: Backend> SqlStore<DB> {
    pub(crate) async fn cached_app(
        &self,
        org_id: &str,
        id_or_uid: &str,
        max_age: Duration,
    ) -> Result<Option<Application>> {
        if let Some(app) = self.cache.app(org_id, id_or_uid, max_age) {
            return Ok(app);
        }
        let reading = self.cache.start();
        let app = self.get_app(org_id, id_or_uid).await?;
        self.cache
            .keep_app(reading, org_id, id_or_uid, app.clone(), max_age);
        Ok(app)
    }

    pub(crate) async fn cached_event_types(
        &self,
        org_id: &str,
        max_age: Duration,
    ) -> Result<Option<EventTypes>> {
        if let Some(types) = self.cache.event_types(org_id, max_age) {
            return Ok(types);
        }
        let reading = self.cache.start();
        let page = Page {
            limit: EVENT_TYPES_AT_ONCE,
            iterator: None,
            descending: false,
            backwards: false,
        };
        let list = self.list_event_types(org_id, true, &page).await?;
        let types = list.done.then(|| {
            Arc::new(
                list.items
                    .into_iter()
                    .map(|et| (et.name.clone(), et))
                    .collect::<HashMap<_, _>>(),
            )
        });
        self.cache
            .keep_event_types(reading, org_id, types.clone(), max_age);
        Ok(types)
    }

    pub(crate) async fn destination(
        &self,
        app_id: &str,
        endpoint_id: &str,
        max_age: Duration,
    ) -> Result<Option<Arc<Destination>>> {
        if let Some(destination) = self.cache.destination(endpoint_id, max_age) {
            // Kept by endpoint id: answer only within the application asked.
            return Ok(destination.filter(|d| d.endpoint.app_id == app_id));
        }
        let reading = self.cache.start();
        let destination = match self.get_endpoint(app_id, endpoint_id).await? {
            Some(endpoint) => {
                let keys = self.secrets(&endpoint.id, Utc::now()).await?;
                let secrets = keys
                    .iter()
                    .filter_map(|k| EndpointSecret::parse(&k.key).ok())
                    .collect();
                Some(Arc::new(Destination { endpoint, secrets }))
            }
            None => None,
        };
        self.cache
            .keep_destination(reading, endpoint_id, destination.clone(), max_age);
        Ok(destination)
    }
}
