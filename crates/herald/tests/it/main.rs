//! Herald's integration tests: one binary, the real server on port 0 with a fresh
//! SQLite database, and real HTTP receivers on loopback.

mod api_edges;
mod bench;
mod browser;
mod catalog;
mod crash;
mod delivery;
mod demo;
mod hardening;
mod multinode;
mod portal;
mod retention;
mod sdk;
mod signatures;
mod smoke;
mod support;
