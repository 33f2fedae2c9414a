//! The store's one caching layer: the reads the hot paths repeat — an
//! application (every new message), an organisation's event types (every new
//! message), an endpoint with its signing keys (every delivery) — reused for
//! as long as the caller allows, and forgotten by this store's own writes
//! (`sql/store.rs` calls [`Cache::forget_org`] and [`Cache::forget_endpoint`]
//! after each write that changes them), so nothing above the store places a
//! `forget` by hand. A change made on another node applies here within the
//! age the caller allowed.
//!
//! What is not forgotten: the endpoint's health counters, which every attempt
//! moves (`record_attempts`); a reader sees them at most the allowed age old.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use herald_core::signing::EndpointSecret;

use crate::model::{Application, Endpoint, EventType};

/// Entries of one kind kept before stale ones are swept.
const SWEEP_AT: usize = 4096;

/// The event types of one organisation, by name.
pub type EventTypes = Arc<HashMap<String, EventType>>;

/// What a delivery needs of its endpoint, read once: the endpoint as it is
/// (URL, headers, date format, whether it is disabled, its transformation
/// and filter) and the keys that sign now, current first, ready to sign.
pub struct Destination {
    pub endpoint: Endpoint,
    /// Keys that do not parse are left out (a corrupt key cannot sign).
    pub secrets: Vec<EndpointSecret>,
}

impl std::fmt::Debug for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Destination")
            .field("endpoint", &self.endpoint.id)
            .field("secrets", &self.secrets.len())
            .finish()
    }
}

struct Entry<T> {
    read_at: Instant,
    value: T,
}

/// One kind of cached read: values by key, each with when it was read.
struct Shelf<K, T> {
    entries: Mutex<HashMap<K, Entry<T>>>,
}

impl<K, T> Default for Shelf<K, T> {
    fn default() -> Self {
        Shelf {
            entries: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Eq + Hash, T: Clone> Shelf<K, T> {
    fn get(&self, key: &K, max_age: Duration) -> Option<T> {
        let entries = self.entries.lock().expect("cache lock");
        let entry = entries.get(key)?;
        (entry.read_at.elapsed() < max_age).then(|| entry.value.clone())
    }

    fn put(&self, key: K, read_at: Instant, value: T, max_age: Duration) {
        let mut entries = self.entries.lock().expect("cache lock");
        if entries.len() >= SWEEP_AT {
            entries.retain(|_, e| e.read_at.elapsed() < max_age);
        }
        entries.insert(key, Entry { read_at, value });
    }

    fn retain(&self, keep: impl Fn(&K) -> bool) {
        self.entries
            .lock()
            .expect("cache lock")
            .retain(|k, _| keep(k));
    }
}

/// (organisation, application id or uid).
type AppKey = (String, String);

#[derive(Default)]
pub struct Cache {
    /// `None`: no such application.
    apps: Shelf<AppKey, Option<Application>>,
    /// By organisation; `None`: too many to keep.
    event_types: Shelf<String, Option<EventTypes>>,
    /// By endpoint id; `None`: no such endpoint.
    destinations: Shelf<String, Option<Arc<Destination>>>,
    /// Bumped by every forget: a read that a write overtook is answered but
    /// not kept.
    generation: AtomicU64,
}

/// A read in progress: what the cache was when it started.
pub struct Reading {
    read_at: Instant,
    generation: u64,
}

impl Cache {
    pub fn app(
        &self,
        org_id: &str,
        id_or_uid: &str,
        max_age: Duration,
    ) -> Option<Option<Application>> {
        self.apps
            .get(&(org_id.to_string(), id_or_uid.to_string()), max_age)
    }

    pub fn event_types(&self, org_id: &str, max_age: Duration) -> Option<Option<EventTypes>> {
        self.event_types.get(&org_id.to_string(), max_age)
    }

    pub fn destination(
        &self,
        endpoint_id: &str,
        max_age: Duration,
    ) -> Option<Option<Arc<Destination>>> {
        self.destinations.get(&endpoint_id.to_string(), max_age)
    }

    /// Call before reading what is to be kept.
    pub fn start(&self) -> Reading {
        Reading {
            read_at: Instant::now(),
            generation: self.generation.load(Ordering::SeqCst),
        }
    }

    /// Whether no write forgot anything since `reading` started (a read it
    /// overtook may hold the old value).
    fn current(&self, reading: &Reading) -> bool {
        self.generation.load(Ordering::SeqCst) == reading.generation
    }

    pub fn keep_app(
        &self,
        reading: Reading,
        org_id: &str,
        id_or_uid: &str,
        app: Option<Application>,
        max_age: Duration,
    ) {
        if self.current(&reading) {
            let key = (org_id.to_string(), id_or_uid.to_string());
            self.apps.put(key, reading.read_at, app, max_age);
        }
    }

    pub fn keep_event_types(
        &self,
        reading: Reading,
        org_id: &str,
        types: Option<EventTypes>,
        max_age: Duration,
    ) {
        if self.current(&reading) {
            let key = org_id.to_string();
            self.event_types.put(key, reading.read_at, types, max_age);
        }
    }

    pub fn keep_destination(
        &self,
        reading: Reading,
        endpoint_id: &str,
        destination: Option<Arc<Destination>>,
        max_age: Duration,
    ) {
        if self.current(&reading) {
            let key = endpoint_id.to_string();
            self.destinations
                .put(key, reading.read_at, destination, max_age);
        }
    }

    /// After a change to the organisation's applications or event types.
    pub fn forget_org(&self, org_id: &str) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.apps.retain(|(org, _)| org != org_id);
        self.event_types.retain(|org| org != org_id);
    }

    /// After a change to the endpoint or its keys.
    pub fn forget_endpoint(&self, endpoint_id: &str) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.destinations.retain(|id| id != endpoint_id);
    }

    /// After deleting an application (its endpoints went with it).
    pub fn forget_org_and_endpoints(&self, org_id: &str) {
        self.forget_org(org_id);
        self.destinations.retain(|_| false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_overtaken_by_a_forget_is_not_kept() {
        let cache = Cache::default();
        let max_age = Duration::from_secs(60);
        let reading = cache.start();
        cache.forget_org("org_1");
        cache.keep_app(reading, "org_1", "app", None, max_age);
        assert!(cache.app("org_1", "app", max_age).is_none());

        let reading = cache.start();
        cache.keep_app(reading, "org_1", "app", None, max_age);
        assert_eq!(cache.app("org_1", "app", max_age), Some(None));
    }

    #[test]
    fn entries_older_than_the_allowed_age_are_not_answered() {
        let cache = Cache::default();
        let reading = cache.start();
        cache.keep_event_types(reading, "org_1", None, Duration::from_secs(60));
        assert!(cache
            .event_types("org_1", Duration::from_secs(60))
            .is_some());
        assert!(cache.event_types("org_1", Duration::ZERO).is_none());
    }

    #[test]
    fn forgetting_an_org_keeps_other_orgs() {
        let cache = Cache::default();
        let max_age = Duration::from_secs(60);
        for org in ["org_1", "org_2"] {
            let reading = cache.start();
            cache.keep_app(reading, org, "app", None, max_age);
        }
        cache.forget_org("org_1");
        assert!(cache.app("org_1", "app", max_age).is_none());
        assert!(cache.app("org_2", "app", max_age).is_some());
    }
}
