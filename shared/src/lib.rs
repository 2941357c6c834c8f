//! `homelab`: everything the services share, written once.
//!
//! A service implements [`Service`] and its `main` is `homelab::run::<MyService>()`.
//! The runtime gives it settings (env + `.env`), logging, an MQTT connection with a
//! last will, heartbeats, a state file, a health file and a `diagnose` command.

// The README's service example is compiled as a doctest, so it cannot rot.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

pub mod diagnose;
pub mod discovery;
pub mod envelope;
pub mod ha;
pub mod health;
pub mod heartbeat;
pub mod http;
pub mod influx;
pub mod logging;
pub mod messages;
pub mod mqtt;
pub mod request_metrics;
pub mod retention;
pub mod retry;
mod runtime;
pub mod secret;
pub mod service;
pub mod settings;
mod shutdown;
pub mod state;
pub mod telegram;
pub mod telemetry;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod transport;
pub mod web;

pub use diagnose::{Check, Step};
pub use mqtt::{Message, Mqtt, MqttConfig, QoS};
pub use retry::{retry, RetryPolicy};
pub use runtime::{run, run_with_tools, serve, EXIT_BAD_SETTINGS, SHUTDOWN_GRACE};
pub use secret::Secret;
pub use service::{Context, Health, Service};
pub use settings::{CommonSettings, Settings};
pub use state::StateStore;
pub use tokio_util::sync::CancellationToken;

// Re-exported so that services need no direct dependency for the basics.
pub use anyhow;
