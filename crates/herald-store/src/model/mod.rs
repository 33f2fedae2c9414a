//! The records the store keeps. They are plain data: the API layer turns them into
//! Svix's JSON shapes, the dispatcher turns them into HTTP requests.

use chrono::{DateTime, Utc};

mod credentials;
mod log;
mod resources;
mod upkeep;

pub use credentials::*;
pub use log::*;
pub use resources::*;
pub use upkeep::*;

pub type Timestamp = DateTime<Utc>;

#[derive(Clone, Debug, Default)]
pub struct Page {
    pub limit: u32,
    /// Continue after (or before, when descending) this key.
    pub iterator: Option<String>,
    pub descending: bool,
    /// Page back: the `limit` items just before `iterator` in the list's
    /// order (Svix's `prevIterator`), still in that order.
    pub backwards: bool,
}

#[derive(Clone, Debug)]
pub struct PageOf<T> {
    pub items: Vec<T>,
    pub done: bool,
}

/// Filters shared by the message and attempt lists.
#[derive(Clone, Debug, Default)]
pub struct ListFilter {
    pub channel: Option<String>,
    /// Messages carrying this tag.
    pub tag: Option<String>,
    pub event_types: Vec<String>,
    pub before: Option<Timestamp>,
    pub after: Option<Timestamp>,
    pub status: Option<MessageStatus>,
    /// Deliveries not finished yet: pending or sending (the portal's
    /// "pending").
    pub unfinished: bool,
    /// 0, 100, 200, ...: keep attempts whose status code is in [class, class+99].
    pub status_code_class: Option<i64>,
    pub endpoint_id: Option<String>,
}
