//! `diagnose`: one line per step (PASS/WARN/FAIL), or one JSON document.
//!
//! `config` always runs first; when it fails nothing else can, so the rest are
//! reported as skipped. Every other step is independent and has its own time limit.

use crate::mqtt::{Mqtt, MqttConfig};
use crate::settings::CommonSettings;
use serde::Serialize;
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

const STEP_TIME_LIMIT: Duration = Duration::from_secs(20);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Pass,
    Warn,
    Fail,
    Skip,
}

impl Outcome {
    fn label(self) -> &'static str {
        match self {
            Self::Pass => "PASS",
            Self::Warn => "WARN",
            Self::Fail => "FAIL",
            Self::Skip => "SKIP",
        }
    }

    fn colour(self) -> &'static str {
        match self {
            Self::Pass => "\x1b[32m",
            Self::Warn => "\x1b[33m",
            Self::Fail => "\x1b[31m",
            Self::Skip => "\x1b[90m",
        }
    }
}

/// What a step found.
#[derive(Clone, Debug)]
pub struct Check {
    pub outcome: Outcome,
    pub detail: String,
}

impl Check {
    pub fn pass(detail: impl Into<String>) -> Self {
        Self {
            outcome: Outcome::Pass,
            detail: detail.into(),
        }
    }
    pub fn warn(detail: impl Into<String>) -> Self {
        Self {
            outcome: Outcome::Warn,
            detail: detail.into(),
        }
    }
    pub fn fail(detail: impl Into<String>) -> Self {
        Self {
            outcome: Outcome::Fail,
            detail: detail.into(),
        }
    }
}

/// A named check, not yet run.
pub struct Step {
    name: String,
    work: Pin<Box<dyn Future<Output = Check> + Send>>,
}

impl Step {
    pub fn new(
        name: impl Into<String>,
        work: impl Future<Output = Check> + Send + 'static,
    ) -> Self {
        Self {
            name: name.into(),
            work: Box::pin(work),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct StepReport {
    pub name: String,
    pub status: Outcome,
    pub detail: String,
    pub duration_ms: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub service: String,
    pub version: String,
    pub ok: bool,
    pub steps: Vec<StepReport>,
}

/// Runs `config` (already evaluated by the caller) and then `steps` one by one.
pub async fn run(
    service: &str,
    version: &str,
    config: (Check, Duration),
    steps: Vec<Step>,
) -> Report {
    let config_failed = config.0.outcome == Outcome::Fail;
    let mut reports = vec![StepReport {
        name: "config".into(),
        status: config.0.outcome,
        detail: config.0.detail,
        duration_ms: config.1.as_millis() as u64,
    }];
    for step in steps {
        if config_failed {
            reports.push(StepReport {
                name: step.name,
                status: Outcome::Skip,
                detail: "skipped: config failed".into(),
                duration_ms: 0,
            });
            continue;
        }
        let started = Instant::now();
        let check = match tokio::time::timeout(STEP_TIME_LIMIT, step.work).await {
            Ok(check) => check,
            Err(_) => Check::fail(format!("no answer within {}s", STEP_TIME_LIMIT.as_secs())),
        };
        reports.push(StepReport {
            name: step.name,
            status: check.outcome,
            detail: check.detail,
            duration_ms: started.elapsed().as_millis() as u64,
        });
    }
    Report {
        service: service.to_string(),
        version: version.to_string(),
        ok: reports
            .iter()
            .all(|step| !matches!(step.status, Outcome::Fail | Outcome::Skip)),
        steps: reports,
    }
}

/// The terminal form: one line per step, coloured when `colour`.
pub fn render_text(report: &Report, colour: bool) -> String {
    let width = report
        .steps
        .iter()
        .map(|step| step.name.len())
        .max()
        .unwrap_or(0);
    let mut out = format!("{} {} diagnose\n", report.service, report.version);
    for step in &report.steps {
        let label = if colour {
            format!("{}{}\x1b[0m", step.status.colour(), step.status.label())
        } else {
            step.status.label().to_string()
        };
        out.push_str(&format!(
            "{label}  {:<width$}  {} ({} ms)\n",
            step.name, step.detail, step.duration_ms
        ));
    }
    out.push_str(if report.ok {
        "result: ok\n"
    } else {
        "result: FAILED\n"
    });
    out
}

/// The built-in `mqtt` step: connect with a throw-away client, subscribe, publish a
/// probe, receive it back, and report the round trip.
pub fn mqtt_step(service: &'static str, settings: &CommonSettings) -> Step {
    let config = MqttConfig::probe(service, settings);
    let endpoint = format!("{}:{}", settings.mqtt_host, settings.mqtt_port);
    Step::new("mqtt", async move {
        let mqtt = Mqtt::connect(&config);
        let check = probe_round_trip(&mqtt, &endpoint).await;
        mqtt.disconnect(Duration::from_secs(1)).await;
        check
    })
}

async fn probe_round_trip(mqtt: &Mqtt, endpoint: &str) -> Check {
    let connect_started = Instant::now();
    if !mqtt.wait_connected(Duration::from_secs(5)).await {
        let reason = mqtt.last_error().unwrap_or_else(|| "no answer".into());
        return Check::fail(format!("cannot connect to {endpoint}: {reason}"));
    }
    let connected_in = connect_started.elapsed();
    let probe_id = crate::envelope::new_trace_id();
    let topic = mqtt.topic(&format!("diagnose/{probe_id}"));
    let (sender, receiver) = tokio::sync::oneshot::channel::<()>();
    let sender = std::sync::Mutex::new(Some(sender));
    let subscribed = mqtt
        .subscribe(&topic, move |_: crate::mqtt::Message<serde_json::Value>| {
            if let Some(sender) = sender.lock().expect("poisoned").take() {
                let _ = sender.send(());
            }
            async { Ok(()) }
        })
        .await;
    if let Err(error) = subscribed {
        return Check::fail(format!("subscribe failed: {error}"));
    }
    // The SUBSCRIBE goes out before this PUBLISH on the same connection, so the broker
    // has the subscription when the probe arrives.
    let sent = Instant::now();
    if let Err(error) = mqtt
        .publish(
            &format!("diagnose/{probe_id}"),
            &serde_json::json!({"probe": probe_id}),
        )
        .await
    {
        return Check::fail(format!("publish failed: {error}"));
    }
    match tokio::time::timeout(Duration::from_secs(5), receiver).await {
        Ok(Ok(())) => Check::pass(format!(
            "{endpoint}: connected in {} ms, publish→receive round trip {:.1} ms",
            connected_in.as_millis(),
            sent.elapsed().as_secs_f64() * 1000.0
        )),
        _ => Check::fail(format!(
            "{endpoint}: connected, but the probe on {topic} did not come back within 5 s (ACL?)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_failed_config_skips_the_rest_and_fails_the_report() {
        let report = run(
            "svc",
            "1.0",
            (
                Check::fail("invalid setting MQTT_PORT=\"x\""),
                Duration::ZERO,
            ),
            vec![Step::new("mqtt", async { Check::pass("never") })],
        )
        .await;
        assert!(!report.ok);
        assert_eq!(report.steps[1].status, Outcome::Skip);
    }

    #[tokio::test]
    async fn steps_are_independent_and_warn_is_not_failure() {
        let report = run(
            "svc",
            "1.0",
            (Check::pass("ok"), Duration::ZERO),
            vec![
                Step::new("a", async { Check::fail("broken") }),
                Step::new("b", async { Check::warn("not configured") }),
                Step::new("c", async { Check::pass("fine") }),
            ],
        )
        .await;
        let statuses: Vec<_> = report.steps.iter().map(|step| step.status).collect();
        assert_eq!(
            statuses,
            [Outcome::Pass, Outcome::Fail, Outcome::Warn, Outcome::Pass]
        );
        assert!(!report.ok);
        let text = render_text(&report, false);
        assert!(text.contains("FAIL  a"), "{text}");
        assert!(!text.contains('\x1b'));
        assert!(render_text(&report, true).contains("\x1b[31mFAIL"));
    }
}
