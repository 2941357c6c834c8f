//! Findings become issues: opened once, resolved once, alerted with a cooldown per
//! issue and held through quiet hours unless critical. Pure, with `now` passed in; the
//! book is saved with the service's state so a restart mid-incident alerts nothing twice.

use crate::findings::{Finding, Layer, Severity};
use chrono::{DateTime, Duration, NaiveDate, NaiveTime, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct OpenIssue {
    pub(crate) finding: Finding,
    pub(crate) opened_at: DateTime<Utc>,
    /// Whether its alert went out (a recovery is sent only for an alerted issue).
    pub(crate) alerted: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Transition {
    Opened,
    Resolved,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Change {
    pub(crate) transition: Transition,
    pub(crate) issue: OpenIssue,
    pub(crate) alert: Option<Alert>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Alert {
    pub(crate) issue_id: String,
    pub(crate) severity: Severity,
    pub(crate) text: String,
    /// Quiet hours: not sent before this.
    pub(crate) hold_until: Option<DateTime<Utc>>,
}

/// `HEALTH_MONITOR_QUIET_HOURS=22-7`: local hours in which only critical alerts go out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct QuietHours {
    start_hour: u32,
    end_hour: u32,
}

impl QuietHours {
    /// `""` is none; otherwise `START-END` in whole hours 0..=23, START ≠ END.
    pub(crate) fn parse(text: &str) -> Result<Option<Self>, String> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(None);
        }
        let bad = || format!("{text:?} is not START-END in hours 0-23, e.g. 22-7");
        let (start, end) = text.split_once('-').ok_or_else(bad)?;
        let start: u32 = start.trim().parse().map_err(|_| bad())?;
        let end: u32 = end.trim().parse().map_err(|_| bad())?;
        if start > 23 || end > 23 || start == end {
            return Err(bad());
        }
        Ok(Some(Self {
            start_hour: start,
            end_hour: end,
        }))
    }

    fn contains(self, hour: u32) -> bool {
        if self.start_hour < self.end_hour {
            (self.start_hour..self.end_hour).contains(&hour)
        } else {
            hour >= self.start_hour || hour < self.end_hour
        }
    }

    /// When the quiet hours around `now` end, or `None` outside them.
    pub(crate) fn end_after(self, now: DateTime<Utc>, zone: Tz) -> Option<DateTime<Utc>> {
        let local = now.with_timezone(&zone);
        if !self.contains(local.hour()) {
            return None;
        }
        let end_time = NaiveTime::from_hms_opt(self.end_hour, 0, 0)?;
        let mut day = local.date_naive();
        if local.hour() >= self.end_hour {
            day = day.succ_opt()?;
        }
        let end = zone
            .from_local_datetime(&day.and_time(end_time))
            .earliest()
            // A DST gap at the end hour: an hour later exists.
            .or_else(|| {
                zone.from_local_datetime(&(day.and_time(end_time) + Duration::hours(1)))
                    .earliest()
            })?;
        Some(end.with_timezone(&Utc))
    }
}

#[derive(Clone, Debug)]
pub(crate) struct AlertPolicy {
    /// No second alert for the same issue id within this time of the previous one.
    pub(crate) cooldown: Duration,
    pub(crate) quiet: Option<QuietHours>,
    pub(crate) zone: Tz,
}

impl AlertPolicy {
    pub(crate) fn hold_until(
        &self,
        severity: Severity,
        now: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        if severity == Severity::Critical {
            return None;
        }
        self.quiet.and_then(|quiet| quiet.end_after(now, self.zone))
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct IssueBook {
    open: BTreeMap<String, OpenIssue>,
    last_alert: BTreeMap<String, DateTime<Utc>>,
}

fn duration_text(duration: Duration) -> String {
    let minutes = duration.num_minutes();
    if minutes < 1 {
        format!("{}s", duration.num_seconds().max(0))
    } else if minutes < 120 {
        format!("{minutes} min")
    } else {
        format!("{:.1} h", minutes as f64 / 60.0)
    }
}

impl IssueBook {
    pub(crate) fn open_issues(&self) -> impl Iterator<Item = &OpenIssue> {
        self.open.values()
    }

    /// A layer ran and found `findings`: its issues not found any more are resolved,
    /// new ones opened. A layer that could not run must not call this (its issues stay).
    pub(crate) fn update(
        &mut self,
        layer: Layer,
        findings: Vec<Finding>,
        now: DateTime<Utc>,
        policy: &AlertPolicy,
    ) -> Vec<Change> {
        let mut changes = Vec::new();
        let found: BTreeMap<String, Finding> = findings
            .into_iter()
            .filter(|finding| finding.layer == layer)
            .map(|finding| (finding.id.clone(), finding))
            .collect();
        let gone: Vec<String> = self
            .open
            .iter()
            .filter(|(id, issue)| issue.finding.layer == layer && !found.contains_key(*id))
            .map(|(id, _)| id.clone())
            .collect();
        for id in gone {
            let issue = self.open.remove(&id).expect("listed above");
            let alert = issue.alerted.then(|| Alert {
                issue_id: id.clone(),
                severity: issue.finding.severity,
                text: format!(
                    "✅ resolved after {}: {}",
                    duration_text(now - issue.opened_at),
                    issue.finding.summary
                ),
                hold_until: policy.hold_until(issue.finding.severity, now),
            });
            changes.push(Change {
                transition: Transition::Resolved,
                issue,
                alert,
            });
        }
        for (id, finding) in found {
            if let Some(open) = self.open.get_mut(&id) {
                // Still open: the newest wording (e.g. how long it has lasted), no alert.
                open.finding = finding;
                continue;
            }
            let cooled = self
                .last_alert
                .get(&id)
                .is_none_or(|last| now - *last >= policy.cooldown);
            let alert = cooled.then(|| Alert {
                issue_id: id.clone(),
                severity: finding.severity,
                text: format!(
                    "{} {}: {}",
                    finding.severity.icon(),
                    format!("{:?}", finding.severity).to_uppercase(),
                    finding.summary
                ),
                hold_until: policy.hold_until(finding.severity, now),
            });
            if alert.is_some() {
                self.last_alert.insert(id.clone(), now);
            }
            let issue = OpenIssue {
                finding,
                opened_at: now,
                alerted: alert.is_some(),
            };
            self.open.insert(id, issue.clone());
            changes.push(Change {
                transition: Transition::Opened,
                issue,
                alert,
            });
        }
        // Forget cooldowns long past, so the book does not grow forever.
        self.last_alert
            .retain(|_, last| now - *last < policy.cooldown * 4);
        changes
    }
}

/// The daily summary is due once a local day, from `hour` on.
pub(crate) fn summary_due(
    now: DateTime<Utc>,
    zone: Tz,
    hour: u32,
    last_sent_on: Option<NaiveDate>,
) -> Option<NaiveDate> {
    let local = now.with_timezone(&zone);
    let today = local.date_naive();
    (local.hour() >= hour && last_sent_on != Some(today)).then_some(today)
}

/// The summary's text: what is open now and what happened in the last day.
pub(crate) fn summary_text(
    book: &IssueBook,
    services: &[(String, String)],
    opened_last_day: usize,
    resolved_last_day: usize,
    now: DateTime<Utc>,
) -> String {
    let mut text = format!(
        "📋 Daily summary: {} open issue(s); in the last 24 h {opened_last_day} opened, {resolved_last_day} resolved.",
        book.open.len()
    );
    for issue in book.open_issues() {
        text.push_str(&format!(
            "\n{} {} (for {})",
            issue.finding.severity.icon(),
            issue.finding.summary,
            duration_text(now - issue.opened_at)
        ));
    }
    if !services.is_empty() {
        let list: Vec<String> = services
            .iter()
            .map(|(service, status)| format!("{service} {status}"))
            .collect();
        text.push_str(&format!("\nServices: {}", list.join(", ")));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::findings::Kind;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().to_utc()
    }

    fn policy(quiet: &str) -> AlertPolicy {
        AlertPolicy {
            cooldown: Duration::minutes(30),
            quiet: QuietHours::parse(quiet).unwrap(),
            zone: chrono_tz::Europe::Berlin,
        }
    }

    fn down(service: &str, severity: Severity) -> Finding {
        Finding::new(
            Layer::Heartbeats,
            Kind::ServiceDown,
            severity,
            service,
            format!("{service} is down"),
        )
    }

    fn sent(changes: &[Change]) -> Vec<(Transition, String)> {
        changes
            .iter()
            .filter_map(|change| {
                change
                    .alert
                    .as_ref()
                    .map(|alert| (change.transition, alert.text.clone()))
            })
            .collect()
    }

    #[test]
    fn one_alert_per_issue_and_one_recovery_when_it_ends() {
        let policy = policy("");
        let mut book = IssueBook::default();
        let t0 = at("2026-11-30T12:00:00Z");
        let first = book.update(
            Layer::Heartbeats,
            vec![down("pv-forecast", Severity::Critical)],
            t0,
            &policy,
        );
        assert_eq!(
            sent(&first),
            [(
                Transition::Opened,
                "🔴 CRITICAL: pv-forecast is down".to_string()
            )]
        );
        for minute in 1..10 {
            let again = book.update(
                Layer::Heartbeats,
                vec![down("pv-forecast", Severity::Critical)],
                t0 + Duration::minutes(minute),
                &policy,
            );
            assert!(again.is_empty(), "still the same issue: no second alert");
        }
        // Another layer's run does not resolve it.
        assert!(book
            .update(
                Layer::Containers,
                vec![],
                t0 + Duration::minutes(11),
                &policy
            )
            .is_empty());
        let resolved = book.update(
            Layer::Heartbeats,
            vec![],
            t0 + Duration::minutes(12),
            &policy,
        );
        assert_eq!(
            sent(&resolved),
            [(
                Transition::Resolved,
                "✅ resolved after 12 min: pv-forecast is down".to_string()
            )]
        );
        assert_eq!(book.open_issues().count(), 0);
    }

    #[test]
    fn a_flapping_issue_alerts_once_per_cooldown_and_recovers_only_what_was_alerted() {
        let policy = policy("");
        let mut book = IssueBook::default();
        let t0 = at("2026-11-30T12:00:00Z");
        let mut alerts = Vec::new();
        // Down for a minute, up for a minute, for an hour.
        for minute in (0..60).step_by(2) {
            let now = t0 + Duration::minutes(minute);
            alerts.extend(sent(&book.update(
                Layer::Heartbeats,
                vec![down("ev-forecast", Severity::Critical)],
                now,
                &policy,
            )));
            alerts.extend(sent(&book.update(
                Layer::Heartbeats,
                vec![],
                now + Duration::minutes(1),
                &policy,
            )));
        }
        let opened = alerts
            .iter()
            .filter(|(transition, _)| *transition == Transition::Opened)
            .count();
        let resolved = alerts.len() - opened;
        assert_eq!((opened, resolved), (2, 2), "{alerts:#?}");
    }

    #[test]
    fn quiet_hours_hold_warnings_until_they_end_but_not_critical_alerts() {
        let policy = policy("22-7");
        let night = at("2026-11-30T23:30:00Z"); // 00:30 in Berlin
        let mut book = IssueBook::default();
        let changes = book.update(
            Layer::Heartbeats,
            vec![
                down("pv-forecast", Severity::Critical),
                Finding::new(
                    Layer::Heartbeats,
                    Kind::ServiceDegraded,
                    Severity::Warning,
                    "ev-forecast",
                    "ev-forecast degraded",
                ),
            ],
            night,
            &policy,
        );
        let holds: Vec<(Severity, Option<DateTime<Utc>>)> = changes
            .iter()
            .map(|change| {
                let alert = change.alert.as_ref().unwrap();
                (alert.severity, alert.hold_until)
            })
            .collect();
        assert!(holds.contains(&(Severity::Critical, None)));
        // 07:00 Berlin = 06:00 UTC the next morning.
        assert!(holds.contains(&(Severity::Warning, Some(at("2026-12-01T06:00:00Z")))));
        let day = at("2026-12-01T10:00:00Z");
        assert_eq!(
            QuietHours::parse("22-7")
                .unwrap()
                .unwrap()
                .end_after(day, policy.zone),
            None
        );
    }

    #[test]
    fn quiet_hours_are_read_or_refused_with_the_reason() {
        assert_eq!(QuietHours::parse(" ").unwrap(), None);
        let evening = QuietHours::parse("1-6").unwrap().unwrap();
        assert!(evening.contains(1) && evening.contains(5) && !evening.contains(6));
        let night = QuietHours::parse("22-7").unwrap().unwrap();
        assert!(
            night.contains(23) && night.contains(0) && !night.contains(7) && !night.contains(21)
        );
        for bad in ["22", "22-24", "a-b", "5-5", "-1-3"] {
            let error = QuietHours::parse(bad).unwrap_err();
            assert!(error.contains("START-END"), "{bad}: {error}");
        }
    }

    #[test]
    fn the_summary_is_due_once_a_day_from_its_hour() {
        let zone = chrono_tz::Europe::Berlin;
        let before = at("2026-11-30T06:30:00Z"); // 07:30 Berlin
        assert_eq!(summary_due(before, zone, 8, None), None);
        let after = at("2026-11-30T07:05:00Z"); // 08:05 Berlin
        let today = NaiveDate::from_ymd_opt(2026, 11, 30).unwrap();
        assert_eq!(summary_due(after, zone, 8, None), Some(today));
        assert_eq!(summary_due(after, zone, 8, Some(today)), None);
        // Started late in the day: still sent today.
        assert_eq!(
            summary_due(at("2026-11-30T20:00:00Z"), zone, 8, today.pred_opt()),
            Some(today)
        );
    }

    #[test]
    fn the_book_survives_a_restart_without_a_second_alert() {
        let policy = policy("");
        let mut book = IssueBook::default();
        let t0 = at("2026-11-30T12:00:00Z");
        book.update(
            Layer::Heartbeats,
            vec![down("pv-forecast", Severity::Critical)],
            t0,
            &policy,
        );
        let saved = serde_json::to_string(&book).unwrap();
        let mut restored: IssueBook = serde_json::from_str(&saved).unwrap();
        assert_eq!(restored, book);
        let after = restored.update(
            Layer::Heartbeats,
            vec![down("pv-forecast", Severity::Critical)],
            t0 + Duration::minutes(3),
            &policy,
        );
        assert!(after.is_empty());
    }
}
