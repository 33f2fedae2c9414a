//! What creating a message reads besides the message: its application and its
//! organisation's event types. Both change rarely and are read on every
//! message, so they are kept for [`LOOKUP_FRESHNESS`]; any change made through
//! this process forgets the organisation's entries at once, and a change made
//! on another node applies here within that time.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use herald_store::{Application, EventType, Page, Store};

use super::error::Result;

/// How long a read application or event-type list is reused.
pub const LOOKUP_FRESHNESS: Duration = Duration::from_secs(1);
/// Event types of one organisation read in one go; an organisation with more
/// is read type by type, uncached.
const EVENT_TYPES_AT_ONCE: u32 = 1000;
/// Entries kept before stale ones are swept.
const SWEEP_AT: usize = 4096;

struct Entry<T> {
    read_at: Instant,
    value: T,
}

impl<T> Entry<T> {
    fn fresh(&self) -> bool {
        self.read_at.elapsed() < LOOKUP_FRESHNESS
    }
}

/// (organisation, application id or uid).
type AppKey = (String, String);

/// The event types of one organisation, by name.
pub type Catalog = Arc<HashMap<String, EventType>>;

#[derive(Default)]
pub struct Lookups {
    /// By (organisation, application id or uid); `None`: no such application.
    apps: Mutex<HashMap<AppKey, Entry<Option<Application>>>>,
    /// By organisation; `None`: too many to keep.
    catalogs: Mutex<HashMap<String, Entry<Option<Catalog>>>>,
    /// Bumped by every [`Lookups::forget`]: a read that a change overtook is
    /// not kept.
    generation: AtomicU64,
}

impl Lookups {
    /// The application, by id or uid, as [`Store::get_app`] answers.
    pub async fn app(
        &self,
        store: &dyn Store,
        org_id: &str,
        id_or_uid: &str,
    ) -> Result<Option<Application>> {
        let key = (org_id.to_string(), id_or_uid.to_string());
        if let Some(e) = self.apps.lock().expect("lookups lock").get(&key) {
            if e.fresh() {
                return Ok(e.value.clone());
            }
        }
        let read_at = Instant::now();
        let generation = self.generation.load(Ordering::SeqCst);
        let app = store.get_app(org_id, id_or_uid).await?;
        let mut apps = self.apps.lock().expect("lookups lock");
        if generation != self.generation.load(Ordering::SeqCst) {
            return Ok(app);
        }
        sweep(&mut apps);
        apps.insert(
            key,
            Entry {
                read_at,
                value: app.clone(),
            },
        );
        Ok(app)
    }

    /// The organisation's event types, or `None` when it has too many to keep
    /// (the caller then asks the store for the one it needs).
    pub async fn catalog(&self, store: &dyn Store, org_id: &str) -> Result<Option<Catalog>> {
        if let Some(e) = self.catalogs.lock().expect("lookups lock").get(org_id) {
            if e.fresh() {
                return Ok(e.value.clone());
            }
        }
        let read_at = Instant::now();
        let generation = self.generation.load(Ordering::SeqCst);
        let page = Page {
            limit: EVENT_TYPES_AT_ONCE,
            iterator: None,
            descending: false,
        };
        let list = store.list_event_types(org_id, true, &page).await?;
        let catalog = list.done.then(|| {
            Arc::new(
                list.items
                    .into_iter()
                    .map(|et| (et.name.clone(), et))
                    .collect::<HashMap<_, _>>(),
            )
        });
        let mut catalogs = self.catalogs.lock().expect("lookups lock");
        if generation != self.generation.load(Ordering::SeqCst) {
            return Ok(catalog);
        }
        sweep(&mut catalogs);
        catalogs.insert(
            org_id.to_string(),
            Entry {
                read_at,
                value: catalog.clone(),
            },
        );
        Ok(catalog)
    }

    /// Forgets what was read of the organisation: call after changing any of
    /// its applications or event types.
    pub fn forget(&self, org_id: &str) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.apps
            .lock()
            .expect("lookups lock")
            .retain(|(org, _), _| org != org_id);
        self.catalogs.lock().expect("lookups lock").remove(org_id);
    }
}

fn sweep<K, T>(map: &mut HashMap<K, Entry<T>>) {
    if map.len() >= SWEEP_AT {
        map.retain(|_, e| e.fresh());
    }
}
