//! How the API tells this process's worker that it queued work, and for which
//! endpoints. A worker whose every endpoint named is already at its limit has
//! nothing to claim, so it does not go to the database for it: under load the
//! API queues thousands of messages a second for endpoints the worker is
//! already busy with.

use std::collections::HashSet;
use std::sync::Mutex;

use tokio::sync::Notify;

#[derive(Default)]
pub struct Wake {
    notify: Notify,
    news: Mutex<News>,
}

/// What was queued since the worker last looked.
#[derive(Default)]
pub(super) struct News {
    /// Work for endpoints not named (a resend, a recovery).
    any: bool,
    endpoints: HashSet<String>,
}

impl News {
    /// Whether every piece of news is for one of the `busy` endpoints.
    pub(super) fn only_for(&self, busy: &[String]) -> bool {
        !self.any && self.endpoints.iter().all(|e| busy.contains(e))
    }
}

impl Wake {
    /// New deliveries to these endpoints were queued.
    pub fn endpoints(&self, ids: impl IntoIterator<Item = String>) {
        self.news.lock().expect("wake lock").endpoints.extend(ids);
        self.notify.notify_one();
    }

    /// Work was queued (to endpoints the caller does not list).
    pub fn any(&self) {
        self.news.lock().expect("wake lock").any = true;
        self.notify.notify_one();
    }

    pub(super) async fn notified(&self) {
        self.notify.notified().await;
    }

    /// The news since the last call, forgotten.
    pub(super) fn take(&self) -> News {
        std::mem::take(&mut *self.news.lock().expect("wake lock"))
    }
}
