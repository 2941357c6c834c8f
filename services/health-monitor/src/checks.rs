//! The polled layers: infrastructure (HA, broker, InfluxDB), entity staleness, and the
//! diagnose sweep. Each returns the layer's findings, or why the layer could not run.

use crate::docker::{Container, Docker};
use crate::findings::{Finding, Kind, Layer, Severity};
use homelab::ha::HomeAssistant;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

/// HA's REST API answers with our token, the broker connection is up, InfluxDB (when
/// configured) is healthy. Each one failing is a finding of its own.
pub(crate) async fn infrastructure(
    ha: &HomeAssistant,
    broker_connected: bool,
    influx: Option<&homelab::influx::Influx>,
) -> Vec<Finding> {
    let mut findings = Vec::new();
    if let Err(error) = ha.config().await {
        findings.push(Finding::new(
            Layer::Infrastructure,
            Kind::HaUnreachable,
            Severity::Critical,
            "homeassistant",
            format!("Home Assistant does not answer: {error}"),
        ));
    } else if let Err(error) = websocket_alive(ha).await {
        findings.push(Finding::new(
            Layer::Infrastructure,
            Kind::HaWebsocketDead,
            Severity::Critical,
            "homeassistant",
            format!("Home Assistant's WebSocket API does not work (REST does): {error}"),
        ));
    }
    if !broker_connected {
        findings.push(Finding::new(
            Layer::Infrastructure,
            Kind::BrokerUnreachable,
            Severity::Critical,
            "mqtt",
            "the MQTT broker is unreachable: services cannot talk to each other",
        ));
    }
    if let Some(influx) = influx {
        if let Err(error) = influx.health().await {
            findings.push(Finding::new(
                Layer::Infrastructure,
                Kind::InfluxUnreachable,
                Severity::Warning,
                "influxdb",
                format!("InfluxDB is not healthy: {error}"),
            ));
        }
    }
    findings
}

/// Connects, authenticates and subscribes to `state_changed`, then hangs up.
async fn websocket_alive(ha: &HomeAssistant) -> Result<(), String> {
    let stop = tokio_util::sync::CancellationToken::new();
    let mut subscription = ha.subscribe_state_changes(Vec::new(), stop.clone());
    let result = subscription
        .wait_subscribed(1, Duration::from_secs(10))
        .await;
    stop.cancel();
    result
}

/// Entities that are `unavailable`/`unknown`, missing, or silent for longer than
/// `stale`. HA unreachable: the layer cannot run (its issues stay as they were).
pub(crate) async fn entities(
    ha: &HomeAssistant,
    entities: &[String],
    stale: chrono::Duration,
) -> Result<Vec<Finding>, String> {
    let mut findings = Vec::new();
    for entity in entities {
        let state = match ha.get_state(entity).await {
            Ok(state) => state,
            Err(error) if error.status == Some(404) => {
                findings.push(Finding::new(
                    Layer::Entities,
                    Kind::EntityUnavailable,
                    Severity::Warning,
                    entity,
                    format!("{entity} does not exist in Home Assistant (renamed or removed?)"),
                ));
                continue;
            }
            Err(error) => return Err(format!("cannot read {entity}: {error}")),
        };
        if matches!(state.state.as_str(), "unavailable" | "unknown") {
            findings.push(Finding::new(
                Layer::Entities,
                Kind::EntityUnavailable,
                Severity::Warning,
                entity,
                format!("{entity} is {}", state.state),
            ));
        } else if let Some(age) = state.age_seconds() {
            if age > stale.num_seconds() as f64 {
                findings.push(Finding::new(
                    Layer::Entities,
                    Kind::EntityStale,
                    Severity::Warning,
                    entity,
                    format!(
                        "{entity} has not reported for {} min (still {:?})",
                        (age / 60.0).round(),
                        state.state
                    ),
                ));
            }
        }
    }
    Ok(findings)
}

/// The FAIL steps of one service's `diagnose --json` report.
pub(crate) fn diagnose_findings(service: &str, report: &Value) -> Vec<Finding> {
    report["steps"]
        .as_array()
        .map(|steps| {
            steps
                .iter()
                .filter(|step| {
                    step["status"]
                        .as_str()
                        .is_some_and(|s| s.eq_ignore_ascii_case("fail"))
                })
                .map(|step| {
                    let name = step["name"].as_str().unwrap_or("?");
                    Finding::new(
                        Layer::Diagnose,
                        Kind::DiagnoseFailed,
                        Severity::Warning,
                        &format!("{service}/{name}"),
                        format!(
                            "{service} diagnose step {name} fails: {}",
                            step["detail"].as_str().unwrap_or("")
                        ),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The JSON document in a command's output (log lines may come before it).
fn json_document(output: &str) -> Option<Value> {
    let start = output.find('{')?;
    let end = output.rfind('}')?;
    serde_json::from_str(output.get(start..=end)?).ok()
}

/// Runs `/app/<service> diagnose --json` in each running container of ours. A container
/// without that binary (the broker, InfluxDB) is not one of ours and is skipped.
pub(crate) async fn diagnose_sweep(
    docker: &Docker,
    containers: &[Container],
) -> (Vec<Finding>, BTreeMap<String, Value>) {
    let mut findings = Vec::new();
    let mut reports = BTreeMap::new();
    for container in containers.iter().filter(|c| c.state == "running") {
        let Some(service) = &container.service else {
            continue;
        };
        let command = vec![
            format!("/app/{service}"),
            "diagnose".into(),
            "--json".into(),
        ];
        match docker
            .exec(&container.name, command, Duration::from_secs(90))
            .await
        {
            Ok(output) => match json_document(&output) {
                Some(report) => {
                    findings.extend(diagnose_findings(service, &report));
                    reports.insert(service.clone(), report);
                }
                None => tracing::debug!(container = %container.name, "diagnose_not_available"),
            },
            Err(error) => {
                tracing::debug!(container = %container.name, error = %error, "diagnose_exec_failed")
            }
        }
    }
    (findings, reports)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_failing_diagnose_steps_are_findings() {
        let report = json!({"service": "pv-forecast", "ok": false, "steps": [
            {"name": "config", "status": "PASS", "detail": "ok"},
            {"name": "mqtt", "status": "WARN", "detail": "slow"},
            {"name": "home_assistant", "status": "FAIL", "detail": "HTTP 401 (HA_TOKEN is wrong or expired)"},
        ]});
        let findings = diagnose_findings("pv-forecast", &report);
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].id, "diagnose_failed:pv-forecast/home_assistant");
        assert!(findings[0].summary.contains("HA_TOKEN"));
        assert!(diagnose_findings("x", &json!({"no": "steps"})).is_empty());
    }

    #[test]
    fn the_report_is_found_after_log_lines() {
        let output = "2026-11-30 INFO starting\n{\"steps\": []}\n";
        assert_eq!(json_document(output), Some(json!({"steps": []})));
        assert_eq!(json_document("exec failed: no such file"), None);
    }
}
