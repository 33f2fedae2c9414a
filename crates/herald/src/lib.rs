//! Herald: a Svix-compatible webhook delivery server. The binary (`main.rs`)
//! parses the command line and calls into this library; tests start the same
//! [`app::serve`] on port 0.

pub mod api;
pub mod app;
pub mod auth;
pub mod catalog;
pub mod config;
pub mod database;
pub mod demo;
pub mod dispatch;
pub mod metrics;
pub mod operational;
pub mod portal;
pub mod retention;
pub mod server;
pub mod service;
pub mod telemetry;
pub mod tokens;
