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
}

impl EventLog {
    pub(crate) fn new(data_dir: &Path, node: &str) -> Self {
        Self {
            root: data_dir.join("events"),
            node: node.to_string(),
        }
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
}
