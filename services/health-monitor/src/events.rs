//! The append-only event store of seed 002: `events/YYYY-MM-DD/<node>/events.jsonl`
//! under `DATA_DIR`, one JSON object per line, never rewritten. A write that fails half
//! way (disk full) is cut back to the last whole line.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, Serialize)]
pub(crate) struct Event {
    pub(crate) ts: DateTime<Utc>,
    /// Seed 002's normalized type: `service_unhealthy`, `remediation_started`, ...
    #[serde(rename = "type")]
    pub(crate) kind: String,
    pub(crate) node: String,
    pub(crate) source: &'static str,
    #[serde(flatten)]
    pub(crate) fields: Map<String, Value>,
}

#[derive(Clone, Debug)]
pub(crate) struct EventLog {
    root: PathBuf,
    node: String,
    /// Day folders older than this go when a new day starts; the newest stays.
    kept: std::time::Duration,
}

impl EventLog {
    pub(crate) fn new(data_dir: &Path, node: &str) -> Self {
        Self {
            root: data_dir.join("events"),
            node: node.to_string(),
            kept: std::time::Duration::from_secs(30 * 86_400),
        }
    }

    pub(crate) fn keeping(mut self, kept: std::time::Duration) -> Self {
        self.kept = kept;
        self
    }

    pub(crate) fn event(&self, now: DateTime<Utc>, kind: &str, fields: Value) -> Event {
        Event {
            ts: now,
            kind: kind.to_string(),
            node: self.node.clone(),
            source: "health-monitor",
            fields: match fields {
                Value::Object(map) => map,
                _ => Map::new(),
            },
        }
    }

    pub(crate) fn file_for(&self, day: DateTime<Utc>) -> PathBuf {
        self.root
            .join(day.format("%Y-%m-%d").to_string())
            .join(&self.node)
            .join("events.jsonl")
    }

    /// Appends one line; blocking (call it off the async workers).
    pub(crate) fn append(&self, event: &Event) -> std::io::Result<()> {
        let path = self.file_for(event.ts);
        if !path.exists() {
            // A new day: the old ones past their time go (checked once a day).
            homelab::retention::prune(
                &self.root,
                |name| name.len() == 10 && name.chars().all(|c| c.is_ascii_digit() || c == '-'),
                std::time::SystemTime::now(),
                homelab::retention::Keep {
                    max_age: self.kept,
                    max_count: usize::MAX,
                },
            );
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut line = serde_json::to_vec(event)?;
        line.push(b'\n');
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)?;
        let before = file.metadata()?.len();
        if let Err(error) = file.write_all(&line).and_then(|()| file.sync_data()) {
            // Whatever part of the line got written goes: the file keeps whole lines only.
            let _ = file.set_len(before);
            return Err(error);
        }
        Ok(())
    }

    /// The events of the given days, oldest first; unreadable lines are skipped.
    pub(crate) fn read_day(&self, day: DateTime<Utc>) -> Vec<Value> {
        std::fs::read_to_string(self.file_for(day))
            .map(|text| {
                text.lines()
                    .filter_map(|line| serde_json::from_str(line).ok())
                    .collect()
            })
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn events_go_one_per_line_into_the_day_and_node_file() {
        let dir = tempfile::tempdir().unwrap();
        let log = EventLog::new(dir.path(), "main");
        let now = DateTime::parse_from_rfc3339("2026-11-30T23:59:59Z")
            .unwrap()
            .to_utc();
        for n in 0..3 {
            log.append(&log.event(now, "service_unhealthy", json!({"service": "a", "n": n})))
                .unwrap();
        }
        let path = dir.path().join("events/2026-11-30/main/events.jsonl");
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 3);
        let first: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        assert_eq!(first["type"], "service_unhealthy");
        assert_eq!(first["node"], "main");
        assert_eq!(first["service"], "a");
        assert_eq!(first["ts"], "2026-11-30T23:59:59Z");
        assert_eq!(log.read_day(now).len(), 3);
    }

    #[test]
    fn a_new_day_prunes_days_past_their_time_and_keeps_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let log =
            EventLog::new(dir.path(), "main").keeping(std::time::Duration::from_secs(30 * 86_400));
        let day = |text: &str| DateTime::parse_from_rfc3339(text).unwrap().to_utc();
        for old in ["2026-09-01T12:00:00Z", "2026-11-20T12:00:00Z"] {
            log.append(&log.event(day(old), "service_unhealthy", json!({})))
                .unwrap();
        }
        // The September day was last written 90 days ago.
        let september = dir.path().join("events/2026-09-01");
        std::fs::File::open(&september)
            .unwrap()
            .set_modified(
                std::time::SystemTime::now() - std::time::Duration::from_secs(90 * 86_400),
            )
            .unwrap();
        std::fs::write(dir.path().join("events/notes.txt"), "a person's file").unwrap();
        log.append(&log.event(day("2026-11-30T08:00:00Z"), "service_recovered", json!({})))
            .unwrap();
        assert!(!september.exists(), "90 days old: pruned");
        assert!(
            dir.path().join("events/2026-11-20").exists(),
            "10 days old: kept"
        );
        assert!(
            dir.path().join("events/notes.txt").exists(),
            "not an event day"
        );
    }
}
