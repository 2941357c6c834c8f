//! The heartbeat layer: each service's last `homelab/<service>/heartbeat`, and what it
//! means now. Pure, with `now` passed in.

use crate::findings::{Finding, Kind, Layer, Severity};
use chrono::{DateTime, Duration, Utc};
use homelab::messages::heartbeat::{Heartbeat, Status, CONNECTION_LOST, ERROR};
use std::collections::BTreeMap;

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Seen {
    pub(crate) status: Status,
    pub(crate) reason: Option<String>,
    pub(crate) interval: Option<Duration>,
    /// When it was sent (its envelope's timestamp), else when it arrived: a retained
    /// heartbeat read at start-up is as old as its timestamp says.
    pub(crate) at: DateTime<Utc>,
}

#[derive(Clone, Debug)]
pub(crate) struct Heartbeats {
    seen: BTreeMap<String, Seen>,
    /// For a heartbeat that does not say its interval.
    default_interval: Duration,
    /// Missing for this many intervals = down.
    missed_intervals: i32,
    /// This service's own name: it does not watch itself.
    own_name: String,
}

impl Heartbeats {
    pub(crate) fn new(default_interval: Duration, missed_intervals: i32, own_name: &str) -> Self {
        Self {
            seen: BTreeMap::new(),
            default_interval,
            missed_intervals,
            own_name: own_name.to_string(),
        }
    }

    pub(crate) fn record(&mut self, heartbeat: &Heartbeat, received: DateTime<Utc>) {
        if heartbeat.service == self.own_name || heartbeat.service.is_empty() {
            return;
        }
        let sent = heartbeat
            .details
            .get("timestamp")
            .and_then(|value| value.as_str())
            .and_then(|text| DateTime::parse_from_rfc3339(text).ok())
            .map(|at| at.to_utc())
            // A clock ahead of ours must not make a heartbeat look fresh forever.
            .filter(|at| *at <= received)
            .unwrap_or(received);
        self.seen.insert(
            heartbeat.service.clone(),
            Seen {
                status: heartbeat.status,
                reason: heartbeat.reason.clone(),
                interval: heartbeat
                    .interval_seconds
                    .filter(|seconds| *seconds > 0)
                    .map(|seconds| Duration::seconds(seconds as i64)),
                at: sent,
            },
        );
    }

    pub(crate) fn services(&self) -> impl Iterator<Item = (&String, &Seen)> {
        self.seen.iter()
    }

    /// The status word for a service now: online, degraded, offline or missing.
    pub(crate) fn state_of(&self, seen: &Seen, now: DateTime<Utc>) -> &'static str {
        match seen.status {
            Status::Offline => "offline",
            _ if now - seen.at > self.allowed_silence(seen) => "missing",
            Status::Degraded => "degraded",
            Status::Online => "online",
        }
    }

    fn allowed_silence(&self, seen: &Seen) -> Duration {
        seen.interval.unwrap_or(self.default_interval) * self.missed_intervals
    }

    /// The earliest moment a finding can change without a new heartbeat.
    pub(crate) fn next_deadline(&self) -> Option<DateTime<Utc>> {
        self.seen
            .values()
            .filter(|seen| seen.status != Status::Offline)
            .map(|seen| seen.at + self.allowed_silence(seen))
            .min()
    }

    pub(crate) fn findings(&self, now: DateTime<Utc>) -> Vec<Finding> {
        let mut findings = Vec::new();
        for (service, seen) in &self.seen {
            let silent = now - seen.at;
            let finding = match seen.status {
                Status::Offline => {
                    let reason = seen.reason.as_deref().unwrap_or("unknown");
                    let (severity, why) = match reason {
                        CONNECTION_LOST => (
                            Severity::Critical,
                            "lost its broker connection (crashed, killed or cut off)",
                        ),
                        ERROR => (Severity::Critical, "stopped with an error"),
                        // Stopped on purpose (an update, `docker compose stop`): worth
                        // a word only if it stays away.
                        _ if silent <= self.allowed_silence(seen) => continue,
                        _ => (Severity::Warning, "was stopped and has not come back"),
                    };
                    Finding::new(
                        Layer::Heartbeats,
                        Kind::ServiceDown,
                        severity,
                        service,
                        format!("{service} is offline: {why} ({reason})"),
                    )
                }
                _ if silent > self.allowed_silence(seen) => Finding::new(
                    Layer::Heartbeats,
                    Kind::ServiceDown,
                    Severity::Critical,
                    service,
                    format!(
                        "{service} is down: no heartbeat since {}",
                        seen.at.format("%H:%M:%S UTC")
                    ),
                ),
                Status::Degraded => Finding::new(
                    Layer::Heartbeats,
                    Kind::ServiceDegraded,
                    Severity::Warning,
                    service,
                    format!(
                        "{service} is degraded: {}",
                        seen.reason.as_deref().unwrap_or("no reason given")
                    ),
                ),
                Status::Online => continue,
            };
            findings.push(finding);
        }
        findings
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().to_utc()
    }

    fn heartbeat(payload: serde_json::Value) -> Heartbeat {
        serde_json::from_value(payload).unwrap()
    }

    fn kinds(findings: &[Finding]) -> Vec<(String, Kind, Severity)> {
        findings
            .iter()
            .map(|finding| (finding.target.clone(), finding.kind, finding.severity))
            .collect()
    }

    #[test]
    fn each_heartbeat_state_becomes_the_right_finding() {
        let t0 = at("2026-11-30T12:00:00Z");
        let online = json!({"status": "online", "service": "a", "interval_seconds": 10});
        let degraded = json!({"status": "degraded", "service": "b", "reason": "HA unreachable", "interval_seconds": 10});
        let lost = json!({"status": "offline", "service": "c", "reason": "connection_lost"});
        let stopped = json!({"status": "offline", "service": "d", "reason": "shutdown"});
        let failed = json!({"status": "offline", "service": "e", "reason": "error"});
        let mut heartbeats = Heartbeats::new(Duration::seconds(60), 3, "health-monitor");
        for payload in [online, degraded, lost, stopped, failed] {
            heartbeats.record(&heartbeat(payload), t0);
        }
        heartbeats.record(
            &heartbeat(json!({"status": "offline", "service": "health-monitor", "reason": "connection_lost"})),
            t0,
        );
        let now = t0 + Duration::seconds(5);
        assert_eq!(
            kinds(&heartbeats.findings(now)),
            [
                ("b".into(), Kind::ServiceDegraded, Severity::Warning),
                ("c".into(), Kind::ServiceDown, Severity::Critical),
                ("e".into(), Kind::ServiceDown, Severity::Critical),
            ]
        );
        // After 3 intervals of 10 s, `a` and `b` are missing; `d` (stopped on purpose,
        // default interval 60 s) is still allowed 180 s.
        let later = t0 + Duration::seconds(31);
        assert_eq!(
            kinds(&heartbeats.findings(later)),
            [
                ("a".into(), Kind::ServiceDown, Severity::Critical),
                ("b".into(), Kind::ServiceDown, Severity::Critical),
                ("c".into(), Kind::ServiceDown, Severity::Critical),
                ("e".into(), Kind::ServiceDown, Severity::Critical),
            ]
        );
        let much_later = t0 + Duration::seconds(181);
        assert!(kinds(&heartbeats.findings(much_later)).contains(&(
            "d".into(),
            Kind::ServiceDown,
            Severity::Warning
        )));
        assert_eq!(heartbeats.next_deadline(), Some(t0 + Duration::seconds(30)));
    }

    #[test]
    fn a_retained_heartbeat_is_as_old_as_its_timestamp() {
        let t0 = at("2026-11-30T12:00:00Z");
        let mut heartbeats = Heartbeats::new(Duration::seconds(60), 3, "health-monitor");
        heartbeats.record(
            &heartbeat(
                json!({"status": "online", "service": "a", "interval_seconds": 60,
                "timestamp": "2026-11-30T11:00:00Z"}),
            ),
            t0,
        );
        assert_eq!(
            kinds(&heartbeats.findings(t0)),
            [("a".into(), Kind::ServiceDown, Severity::Critical)]
        );
        // A timestamp from the future counts as now.
        heartbeats.record(
            &heartbeat(
                json!({"status": "online", "service": "a", "interval_seconds": 60,
                "timestamp": "2027-01-01T00:00:00Z"}),
            ),
            t0,
        );
        assert!(heartbeats.findings(t0 + Duration::seconds(179)).is_empty());
        assert_eq!(heartbeats.findings(t0 + Duration::seconds(181)).len(), 1);
    }

    #[test]
    fn a_service_back_online_clears_its_finding() {
        let t0 = at("2026-11-30T12:00:00Z");
        let mut heartbeats = Heartbeats::new(Duration::seconds(60), 3, "health-monitor");
        heartbeats.record(
            &heartbeat(json!({"status": "offline", "service": "a", "reason": "connection_lost"})),
            t0,
        );
        assert_eq!(heartbeats.findings(t0).len(), 1);
        heartbeats.record(
            &heartbeat(json!({"status": "online", "service": "a", "interval_seconds": 60})),
            t0 + Duration::seconds(4),
        );
        assert!(heartbeats.findings(t0 + Duration::seconds(5)).is_empty());
    }
}
