//! Herald's integration tests: one binary, the real server on port 0 with a fresh
//! SQLite database, and real HTTP receivers on loopback.

mod api_edges;
mod asymmetric;
mod at_rest;
mod bench;
mod browser;
mod catalog;
mod catalog_props;
mod cli;
mod crash;
mod credentials;
mod delivery;
mod demo;
mod formats;
mod hardening;
mod health;
mod idempotency;
mod metrics;
mod multinode;
mod operational;
mod portal;
mod portal_auth;
mod portal_forms;
mod rate_limits;
mod retention;
mod scheduled;
mod sdk;
mod security;
mod signatures;
mod smoke;
mod ssrf;
mod support;
mod telemetry;
mod tenants;
mod transformations;
mod worker_failures;
