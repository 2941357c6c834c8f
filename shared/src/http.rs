//! The optional HTTP endpoint of a service (`HTTP_PORT`, 0 = off):
//! `/healthz` (the healthcheck file's rule), `/readyz` (MQTT connected, Home Assistant
//! answering when the configuration uses it, and the service not degraded) and
//! `/metrics` in Prometheus text format.
//!
//! The exposition format is written here (a dozen lines): the counters already live
//! in atomics next to the code that moves them, and a registry crate would only copy
//! them. The test parses the output with an independent parser (prometheus-parse).

use crate::ha::HomeAssistant;
use crate::mqtt::Mqtt;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use std::fmt::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// The service's own health, once the service exists (the server starts before it).
pub type HealthSlot = Arc<std::sync::OnceLock<Box<dyn Fn() -> crate::Health + Send + Sync>>>;

/// What the endpoints read.
#[derive(Clone)]
pub struct HttpState {
    pub service: &'static str,
    pub version: &'static str,
    pub started: Instant,
    pub data_dir: PathBuf,
    pub healthcheck_max_age: Duration,
    pub mqtt: Mqtt,
    pub ha: Option<HomeAssistant>,
    pub influx: Option<crate::influx::Influx>,
    /// A degraded service is not ready, and says why.
    pub health: HealthSlot,
}

pub fn router(state: HttpState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(Arc::new(state))
}

/// Serves until `stop`; logs and returns when the port cannot be bound.
pub async fn serve(state: HttpState, port: u16, stop: CancellationToken) {
    let listener = match tokio::net::TcpListener::bind(("0.0.0.0", port)).await {
        Ok(listener) => listener,
        Err(error) => {
            tracing::error!(port, error = %error, "http_bind_failed");
            return;
        }
    };
    tracing::info!(port, "http_listening");
    let served = axum::serve(listener, router(state))
        .with_graceful_shutdown(async move { stop.cancelled().await })
        .await;
    if let Err(error) = served {
        tracing::error!(error = %error, "http_server_failed");
    }
}

async fn healthz(State(state): State<Arc<HttpState>>) -> impl IntoResponse {
    match crate::health::check(&state.data_dir, state.healthcheck_max_age) {
        Ok(age) => (
            StatusCode::OK,
            format!("healthy: last success {}s ago\n", age.as_secs()),
        ),
        Err(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("unhealthy: {reason}\n"),
        ),
    }
}

async fn readyz(State(state): State<Arc<HttpState>>) -> impl IntoResponse {
    if !state.mqtt.is_connected() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: mqtt disconnected\n".to_string(),
        );
    }
    // Only set when the service's configuration uses HA: then a failing HA means the
    // service cannot do its job.
    if let Some(ha) = &state.ha {
        if ha.metrics().last_failed() {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("not ready: home assistant at {} failing\n", ha.url()),
            );
        }
    }
    let health = state.health.get().map(|health| health());
    match health.as_ref().and_then(crate::Health::reason) {
        Some(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("degraded: {reason}\n"),
        ),
        None => (StatusCode::OK, "ready: mqtt connected\n".to_string()),
    }
}

async fn metrics(State(state): State<Arc<HttpState>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        render_metrics(&state),
    )
}

fn family(out: &mut String, name: &str, kind: &str, help: &str, labels: &str, value: f64) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
    let _ = writeln!(out, "{name}{{{labels}}} {value}");
}

/// The Prometheus text exposition of this process's counters.
pub fn render_metrics(state: &HttpState) -> String {
    let labels = format!(
        "service=\"{}\",version=\"{}\"",
        state.service, state.version
    );
    let mqtt = state.mqtt.metrics();
    let mut out = String::with_capacity(2048);
    let counters = [
        (
            "homelab_mqtt_messages_in_total",
            "MQTT messages received.",
            mqtt.messages_in(),
        ),
        (
            "homelab_mqtt_messages_out_total",
            "MQTT messages published.",
            mqtt.messages_out(),
        ),
        (
            "homelab_mqtt_handler_errors_total",
            "Handler errors and panics.",
            mqtt.handler_errors(),
        ),
        (
            "homelab_mqtt_dead_letters_total",
            "Messages sent to the dead-letter topic.",
            mqtt.dead_letters(),
        ),
        (
            "homelab_mqtt_reconnects_total",
            "Reconnects to the broker.",
            mqtt.reconnects(),
        ),
        (
            "homelab_mqtt_backlog_overflows_total",
            "Messages that found their subscription's queue full.",
            mqtt.backlog_overflows(),
        ),
    ];
    for (name, help, value) in counters {
        family(&mut out, name, "counter", help, &labels, value as f64);
    }
    family(
        &mut out,
        "homelab_mqtt_backlog",
        "gauge",
        "Messages received and waiting for their handler.",
        &labels,
        mqtt.backlog() as f64,
    );
    let connected = if state.mqtt.is_connected() { 1.0 } else { 0.0 };
    family(
        &mut out,
        "homelab_mqtt_connected",
        "gauge",
        "1 while connected to the broker.",
        &labels,
        connected,
    );
    family(
        &mut out,
        "homelab_uptime_seconds",
        "gauge",
        "Seconds since start.",
        &labels,
        state.started.elapsed().as_secs_f64(),
    );
    if let Some(memory) = crate::heartbeat::memory_mb() {
        family(
            &mut out,
            "homelab_resident_memory_bytes",
            "gauge",
            "Resident memory.",
            &labels,
            memory * 1024.0 * 1024.0,
        );
    }
    if let Some(ha) = &state.ha {
        let ha = ha.metrics();
        family(
            &mut out,
            "homelab_ha_requests_total",
            "counter",
            "Home Assistant REST requests.",
            &labels,
            ha.requests() as f64,
        );
        family(
            &mut out,
            "homelab_ha_request_failures_total",
            "counter",
            "Failed Home Assistant REST requests.",
            &labels,
            ha.failures() as f64,
        );
        family(
            &mut out,
            "homelab_ha_request_seconds_total",
            "counter",
            "Time spent in Home Assistant REST requests.",
            &labels,
            ha.latency_seconds_total(),
        );
    }
    if let Some(influx) = &state.influx {
        let influx = influx.metrics();
        let families = [
            (
                "homelab_influx_requests_total",
                "InfluxDB requests.",
                influx.requests() as f64,
            ),
            (
                "homelab_influx_request_failures_total",
                "Failed InfluxDB requests.",
                influx.failures() as f64,
            ),
            (
                "homelab_influx_request_seconds_total",
                "Time spent in InfluxDB requests.",
                influx.latency_seconds_total(),
            ),
        ];
        for (name, help, value) in families {
            family(&mut out, name, "counter", help, &labels, value);
        }
    }
    out
}
