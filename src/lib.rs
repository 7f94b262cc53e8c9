//! Velvet: a self-hosted virtual waiting room.
//!
//! The crate is laid out along the boxes of `docs/DESIGN.md`: `config` reads the
//! settings, `domain` holds experiences and sequences, `store` keeps all
//! shared state (in process or in Redis), `tokens` signs sessions and handoff
//! tokens, `leader` admits batches under a per-sequence lease, `ws` pushes
//! changes to connected consumers, `http` serves the public contract, and
//! `app` wires them into one node.

#![forbid(unsafe_code)]

pub mod app;
pub mod catalog;
pub mod config;
pub mod domain;
pub mod draw;
pub mod http;
pub mod leader;
pub mod loadtest;
pub mod metrics;
pub mod migrations;
pub mod store;
pub mod telemetry;
pub mod tokens;
pub mod web;
pub mod ws;

pub use app::{App, RunningNode};
pub use config::Settings;
