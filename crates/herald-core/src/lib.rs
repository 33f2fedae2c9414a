//! Herald's domain rules, kept apart from everything that talks to the outside
//! world: prefixed time-sortable IDs, the identifier rule for `uid`s, event type
//! names and channels, endpoint URLs parsed into a type that cannot hold a bad
//! value, Standard Webhooks signing secrets and signatures, the retry schedule and
//! Retry-After handling, the rule that decides which IP addresses Herald may
//! deliver to, the date formats an endpoint may choose for timestamp fields, and
//! JSON Schema checks for event type schemas and the payloads sent against them,
//! the strict reading of the JSON text Herald keeps as sent, the sealing of
//! secrets at rest, and content filters ("only when …" rules on a payload).
//! Architecture invariant: this crate does no I/O — no sockets, no files, no
//! database, no async runtime — so every function here is a pure computation
//! (apart from reading the clock and the random number generator) that can be
//! tested with a table of inputs and expected outputs.

pub mod dates;
pub mod endpoint_url;
pub mod filter;
pub mod headers;
pub mod id;
pub mod json;
pub mod name;
pub mod net;
pub mod schedule;
pub mod schema;
pub mod seal;
pub mod signing;
