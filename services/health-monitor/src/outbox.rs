//! Alerts waiting to be sent, one file each under `DATA_DIR/outbox/`, so none is lost
//! while Telegram is unreachable or health-monitor restarts. A message records each
//! chat it reached, so a retry never sends it to a chat twice.

use crate::findings::Severity;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Queued {
    pub(crate) issue_id: String,
    pub(crate) severity: Severity,
    pub(crate) text: String,
    pub(crate) created_at: DateTime<Utc>,
    #[serde(default)]
    pub(crate) hold_until: Option<DateTime<Utc>>,
    /// Chats that already have it.
    #[serde(default)]
    pub(crate) sent_to: Vec<String>,
}

#[derive(Debug)]
pub(crate) struct Outbox {
    dir: PathBuf,
    sequence: AtomicU64,
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::File::open(&tmp)?.sync_all()?;
    std::fs::rename(&tmp, path)
}

impl Outbox {
    pub(crate) fn new(data_dir: &Path) -> Self {
        Self {
            dir: data_dir.join("outbox"),
            sequence: AtomicU64::new(0),
        }
    }

    /// Queues one message; blocking.
    pub(crate) fn push(&self, message: &Queued) -> std::io::Result<PathBuf> {
        std::fs::create_dir_all(&self.dir)?;
        // Names sort in the order of queueing, across restarts too.
        let name = format!(
            "{:020}-{:06}.json",
            message.created_at.timestamp_micros(),
            self.sequence.fetch_add(1, Ordering::Relaxed) % 1_000_000
        );
        let path = self.dir.join(name);
        write_atomically(&path, &serde_json::to_vec_pretty(message)?)?;
        Ok(path)
    }

    /// Every queued message in order, with its file; unreadable files are set aside.
    pub(crate) fn queued(&self) -> Vec<(PathBuf, Queued)> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|entry| entry.ok().map(|entry| entry.path()))
            .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
            .collect();
        paths.sort();
        paths
            .into_iter()
            .filter_map(|path| {
                let parsed = std::fs::read(&path)
                    .ok()
                    .and_then(|bytes| serde_json::from_slice::<Queued>(&bytes).ok());
                if parsed.is_none() {
                    tracing::warn!(path = %path.display(), "outbox_message_unreadable_set_aside");
                    let _ = std::fs::rename(&path, path.with_extension("unreadable"));
                }
                parsed.map(|message| (path, message))
            })
            .collect()
    }

    /// Records the chats reached so far.
    pub(crate) fn update(&self, path: &Path, message: &Queued) -> std::io::Result<()> {
        write_atomically(path, &serde_json::to_vec_pretty(message)?)
    }

    pub(crate) fn done(&self, path: &Path) -> std::io::Result<()> {
        std::fs::remove_file(path)
    }

    /// Temp files of a write that a crash interrupted.
    pub(crate) fn remove_stale_temp_files(&self) {
        if let Ok(entries) = std::fs::read_dir(&self.dir) {
            for entry in entries.flatten() {
                if entry.path().extension().is_some_and(|ext| ext == "tmp") {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(text: &str) -> Queued {
        Queued {
            issue_id: "service_down:a".into(),
            severity: Severity::Critical,
            text: text.into(),
            created_at: Utc::now(),
            hold_until: None,
            sent_to: vec![],
        }
    }

    #[test]
    fn messages_come_back_in_order_after_a_restart_and_go_when_done() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::new(dir.path());
        for text in ["first", "second", "third"] {
            outbox.push(&message(text)).unwrap();
        }
        std::fs::write(dir.path().join("outbox/zz.json"), b"{torn").unwrap();
        let reopened = Outbox::new(dir.path());
        let queued = reopened.queued();
        let texts: Vec<&str> = queued.iter().map(|(_, m)| m.text.as_str()).collect();
        assert_eq!(texts, ["first", "second", "third"]);
        assert!(dir.path().join("outbox/zz.unreadable").exists());
        let (path, mut first) = queued[0].clone();
        first.sent_to.push("42".into());
        reopened.update(&path, &first).unwrap();
        assert_eq!(reopened.queued()[0].1.sent_to, ["42"]);
        reopened.done(&path).unwrap();
        assert_eq!(reopened.queued().len(), 2);
    }
}
