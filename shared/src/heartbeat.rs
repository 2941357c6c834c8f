//! The retained `homelab/{service}/heartbeat` message: alive, degraded, or gone.

use crate::mqtt::{Mqtt, QoS};
use crate::service::Health;
use serde_json::{json, Map, Value};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Resident memory of this process in MiB, from the process itself.
pub fn memory_mb() -> Option<f64> {
    memory_stats::memory_stats().map(|stats| round1(stats.physical_mem as f64 / (1024.0 * 1024.0)))
}

fn round1(value: f64) -> f64 {
    (value * 10.0).round() / 10.0
}

pub fn online_payload(
    service: &str,
    version: &str,
    started: Instant,
    interval: Duration,
    health: &Health,
) -> Value {
    let mut payload: Map<String, Value> = health.fields().clone();
    payload.insert(
        "status".into(),
        json!(if health.is_degraded() {
            "degraded"
        } else {
            "online"
        }),
    );
    if let Some(reason) = health.reason() {
        payload.insert("reason".into(), json!(reason));
    }
    payload.insert("service".into(), json!(service));
    payload.insert("version".into(), json!(version));
    payload.insert("interval_seconds".into(), json!(interval.as_secs()));
    payload.insert(
        "uptime_seconds".into(),
        json!(round1(started.elapsed().as_secs_f64())),
    );
    payload.insert("memory_mb".into(), json!(memory_mb()));
    Value::Object(payload)
}

pub fn offline_payload(service: &str, version: &str, started: Instant, reason: &str) -> Value {
    json!({
        "status": "offline",
        "service": service,
        "version": version,
        "reason": reason,
        "uptime_seconds": round1(started.elapsed().as_secs_f64()),
    })
}

/// Publishes a heartbeat at once and then every `interval`, until `stop`.
pub async fn run(
    mqtt: Mqtt,
    interval: Duration,
    stop: CancellationToken,
    payload: impl Fn() -> Value,
) {
    let topic = mqtt.topic("heartbeat");
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = ticker.tick() => {}
        }
        if let Err(error) = mqtt
            .publish_json(&topic, &payload(), QoS::AtLeastOnce, true)
            .await
        {
            tracing::warn!(error = %error, "heartbeat_publish_failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::heartbeat::{Heartbeat, Status, CONNECTION_LOST};

    /// What a service publishes is what health-monitor reads: every form, one type.
    #[test]
    fn each_heartbeat_the_runtime_publishes_parses_as_the_shared_message() {
        let started = Instant::now();
        let interval = Duration::from_secs(60);
        let online: Heartbeat = serde_json::from_value(online_payload(
            "pv-forecast",
            "1.2.3",
            started,
            interval,
            &Health::online().with("cycles", 4),
        ))
        .unwrap();
        assert_eq!(
            (
                online.status,
                online.interval_seconds,
                online.details["cycles"].clone()
            ),
            (Status::Online, Some(60), json!(4))
        );
        let degraded: Heartbeat = serde_json::from_value(online_payload(
            "pv-forecast",
            "1.2.3",
            started,
            interval,
            &Health::degraded("HA unreachable"),
        ))
        .unwrap();
        assert_eq!(degraded.status, Status::Degraded);
        assert_eq!(degraded.reason.as_deref(), Some("HA unreachable"));
        let offline: Heartbeat =
            serde_json::from_value(offline_payload("pv-forecast", "1.2.3", started, "shutdown"))
                .unwrap();
        assert_eq!(offline.status, Status::Offline);
        let settings = crate::settings::CommonSettings::default();
        let (_, will) = crate::mqtt::MqttConfig::for_service("pv-forecast", "1.2.3", &settings)
            .last_will
            .unwrap();
        let will: Heartbeat = serde_json::from_slice(&will).unwrap();
        assert_eq!(
            (will.status, will.reason.as_deref()),
            (Status::Offline, Some(CONNECTION_LOST))
        );
    }
}
