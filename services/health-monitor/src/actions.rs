//! Remediation as files (seed 002): `actions/<stage>/<id>.json` under `DATA_DIR`, moved
//! pending → approved → running → completed | failed, or pending → rejected. Nothing
//! destructive runs without a file in `approved/`, put there by a person (MQTT or CLI).

use crate::findings::{Finding, Kind};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Stage {
    Pending,
    Approved,
    Running,
    Completed,
    Failed,
    Rejected,
}

impl Stage {
    pub(crate) const ALL: [Stage; 6] = [
        Stage::Pending,
        Stage::Approved,
        Stage::Running,
        Stage::Completed,
        Stage::Failed,
        Stage::Rejected,
    ];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Running => "running",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Rejected => "rejected",
        }
    }

    fn is_finished(self) -> bool {
        matches!(self, Self::Completed | Self::Failed | Self::Rejected)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ActionKind {
    ContainerRestart,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Action {
    pub(crate) id: String,
    pub(crate) kind: ActionKind,
    /// The container to act on.
    pub(crate) target: String,
    pub(crate) issue_id: String,
    pub(crate) reason: String,
    pub(crate) created_at: DateTime<Utc>,
    #[serde(default)]
    pub(crate) decided_by: Option<String>,
    #[serde(default)]
    pub(crate) decided_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub(crate) finished_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub(crate) outcome: Option<String>,
}

/// The routing table (seed 002): which findings call for which action. Everything
/// else is `alert_only`: the alert is the whole response.
pub(crate) fn route(finding: &Finding, container: Option<&str>) -> Option<ActionKind> {
    match finding.kind {
        Kind::ContainerNotRunning | Kind::ContainerUnhealthy | Kind::ServiceDown => {
            container.map(|_| ActionKind::ContainerRestart)
        }
        _ => None,
    }
}

/// Ids are stable per incident: the same issue opened at the same moment proposes the
/// same id, so a repeat (or a restart of health-monitor) cannot propose it twice.
pub(crate) fn action_id(kind: ActionKind, target: &str, opened_at: DateTime<Utc>) -> String {
    let kind = match kind {
        ActionKind::ContainerRestart => "restart",
    };
    let target: String = target
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{kind}-{target}-{}", opened_at.format("%Y%m%dT%H%M%SZ"))
}

#[derive(Clone, Debug)]
pub(crate) struct ActionStore {
    root: PathBuf,
}

impl ActionStore {
    pub(crate) fn new(data_dir: &Path) -> Self {
        Self {
            root: data_dir.join("actions"),
        }
    }

    fn path(&self, stage: Stage, id: &str) -> PathBuf {
        self.root.join(stage.as_str()).join(format!("{id}.json"))
    }

    fn write(&self, stage: Stage, action: &Action) -> std::io::Result<()> {
        let path = self.path(stage, &action.id);
        std::fs::create_dir_all(path.parent().expect("stage folder"))?;
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(action)?)?;
        std::fs::File::open(&tmp)?.sync_all()?;
        std::fs::rename(&tmp, &path)
    }

    /// Where an action is now: the latest stage holding it (a crash between writing
    /// the next stage and removing the previous one leaves two copies).
    pub(crate) fn find(&self, id: &str) -> Option<(Stage, Action)> {
        // An id as typed by a person or taken from a topic becomes a file name.
        if !homelab::messages::health_monitor::valid_action_id(id) {
            return None;
        }
        Stage::ALL.iter().rev().find_map(|stage| {
            let bytes = std::fs::read(self.path(*stage, id)).ok()?;
            serde_json::from_slice(&bytes)
                .ok()
                .map(|action| (*stage, action))
        })
    }

    pub(crate) fn list(&self, stage: Stage) -> Vec<Action> {
        let Ok(entries) = std::fs::read_dir(self.root.join(stage.as_str())) else {
            return Vec::new();
        };
        let mut actions: Vec<Action> = entries
            .flatten()
            .filter(|entry| entry.path().extension().is_some_and(|ext| ext == "json"))
            .filter_map(|entry| serde_json::from_slice(&std::fs::read(entry.path()).ok()?).ok())
            .filter(|action: &Action| self.find(&action.id).is_some_and(|(at, _)| at == stage))
            .collect();
        actions.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
        actions
    }

    /// Writes a new pending action unless this id exists at any stage, another action
    /// for the same issue is still open, or the target was acted on within `cooldown`.
    pub(crate) fn propose(
        &self,
        action: &Action,
        cooldown: Duration,
        now: DateTime<Utc>,
    ) -> std::io::Result<bool> {
        if self.find(&action.id).is_some() {
            return Ok(false);
        }
        for stage in [Stage::Pending, Stage::Approved, Stage::Running] {
            if self
                .list(stage)
                .iter()
                .any(|open| open.issue_id == action.issue_id || open.target == action.target)
            {
                return Ok(false);
            }
        }
        for stage in [Stage::Completed, Stage::Failed] {
            let recent = self.list(stage).into_iter().any(|done| {
                done.target == action.target
                    && done.finished_at.is_some_and(|at| now - at < cooldown)
            });
            if recent {
                return Ok(false);
            }
        }
        self.write(Stage::Pending, action)?;
        Ok(true)
    }

    /// Moves `id` from `from` to `to`, changed by `update`; an error says why not
    /// (unknown, or not at `from`: e.g. already approved or finished).
    pub(crate) fn advance(
        &self,
        id: &str,
        from: Stage,
        to: Stage,
        update: impl FnOnce(&mut Action),
    ) -> Result<Action, String> {
        let Some((stage, mut action)) = self.find(id) else {
            return Err(format!("no action {id}"));
        };
        if stage != from {
            let state = if stage.is_finished() {
                "already finished"
            } else {
                "not pending"
            };
            return Err(format!(
                "action {id} is {} ({state}), not {}",
                stage.as_str(),
                from.as_str()
            ));
        }
        update(&mut action);
        self.write(to, &action)
            .and_then(|()| std::fs::remove_file(self.path(from, id)))
            .map_err(|error| format!("cannot move action {id} to {}: {error}", to.as_str()))?;
        Ok(action)
    }

    /// A person's decision on a pending action.
    pub(crate) fn decide(
        &self,
        id: &str,
        approve: bool,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<Action, String> {
        let to = if approve {
            Stage::Approved
        } else {
            Stage::Rejected
        };
        self.advance(id, Stage::Pending, to, |action| {
            action.decided_by = Some(by.to_string());
            action.decided_at = Some(now);
            if !approve {
                action.finished_at = Some(now);
                action.outcome = Some(format!("rejected by {by}"));
            }
        })
    }

    /// Actions a crash left in `running/`: not repeated without a new approval.
    pub(crate) fn fail_interrupted(&self, now: DateTime<Utc>) -> Vec<Action> {
        self.list(Stage::Running)
            .into_iter()
            .filter_map(|action| {
                self.advance(&action.id, Stage::Running, Stage::Failed, |action| {
                    action.finished_at = Some(now);
                    action.outcome =
                        Some("interrupted by a restart of health-monitor; not repeated".into());
                })
                .ok()
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::findings::{Layer, Severity};

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().to_utc()
    }

    fn restart(target: &str, opened: DateTime<Utc>) -> Action {
        Action {
            id: action_id(ActionKind::ContainerRestart, target, opened),
            kind: ActionKind::ContainerRestart,
            target: target.into(),
            issue_id: format!("container_not_running:{target}"),
            reason: "exited".into(),
            created_at: opened,
            decided_by: None,
            decided_at: None,
            finished_at: None,
            outcome: None,
        }
    }

    #[test]
    fn the_routing_table_restarts_containers_and_only_alerts_on_the_rest() {
        let finding = |kind| Finding::new(Layer::Containers, kind, Severity::Warning, "x", "x");
        assert_eq!(
            route(&finding(Kind::ContainerUnhealthy), Some("homelab-x-1")),
            Some(ActionKind::ContainerRestart)
        );
        assert_eq!(
            route(&finding(Kind::ServiceDown), None),
            None,
            "no container known"
        );
        for kind in [
            Kind::EntityStale,
            Kind::DiagnoseFailed,
            Kind::HaUnreachable,
            Kind::ServiceDegraded,
        ] {
            assert_eq!(route(&finding(kind), Some("c")), None, "{kind}");
        }
    }

    #[test]
    fn proposals_are_deduplicated_and_cooled_down() {
        let dir = tempfile::tempdir().unwrap();
        let store = ActionStore::new(dir.path());
        let t0 = at("2026-11-30T12:00:00Z");
        let cooldown = Duration::minutes(30);
        let first = restart("homelab-a-1", t0);
        assert!(store.propose(&first, cooldown, t0).unwrap());
        assert!(!store.propose(&first, cooldown, t0).unwrap(), "same id");
        let later = restart("homelab-a-1", t0 + Duration::minutes(1));
        assert!(
            !store.propose(&later, cooldown, t0).unwrap(),
            "one open per target"
        );
        store.decide(&first.id, true, "tester", t0).unwrap();
        store
            .advance(&first.id, Stage::Approved, Stage::Running, |_| {})
            .unwrap();
        store
            .advance(&first.id, Stage::Running, Stage::Completed, |action| {
                action.finished_at = Some(t0 + Duration::minutes(2));
            })
            .unwrap();
        assert!(
            !store
                .propose(&later, cooldown, t0 + Duration::minutes(10))
                .unwrap(),
            "cooldown"
        );
        assert!(store
            .propose(&later, cooldown, t0 + Duration::minutes(40))
            .unwrap());
        assert_eq!(store.list(Stage::Completed).len(), 1);
        assert_eq!(store.list(Stage::Pending).len(), 1);
    }

    #[test]
    fn a_decision_needs_a_pending_action_and_says_why_not() {
        let dir = tempfile::tempdir().unwrap();
        let store = ActionStore::new(dir.path());
        let t0 = at("2026-11-30T12:00:00Z");
        let action = restart("homelab-a-1", t0);
        store.propose(&action, Duration::minutes(30), t0).unwrap();
        assert_eq!(
            store.decide("restart-nope", true, "x", t0).unwrap_err(),
            "no action restart-nope"
        );
        assert_eq!(
            store.decide("../../etc/passwd", true, "x", t0).unwrap_err(),
            "no action ../../etc/passwd"
        );
        let rejected = store.decide(&action.id, false, "anna", t0).unwrap();
        assert_eq!(rejected.outcome.as_deref(), Some("rejected by anna"));
        let again = store.decide(&action.id, true, "ben", t0).unwrap_err();
        assert!(again.contains("is rejected (already finished)"), "{again}");
        assert!(store.list(Stage::Approved).is_empty());
    }

    #[test]
    fn a_running_action_found_at_start_fails_instead_of_running_twice() {
        let dir = tempfile::tempdir().unwrap();
        let store = ActionStore::new(dir.path());
        let t0 = at("2026-11-30T12:00:00Z");
        let action = restart("homelab-a-1", t0);
        store.propose(&action, Duration::minutes(30), t0).unwrap();
        store.decide(&action.id, true, "x", t0).unwrap();
        store
            .advance(&action.id, Stage::Approved, Stage::Running, |_| {})
            .unwrap();
        let failed = store.fail_interrupted(t0);
        assert_eq!(failed.len(), 1);
        assert_eq!(store.find(&action.id).unwrap().0, Stage::Failed);
    }
}
