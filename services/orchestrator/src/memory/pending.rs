//! Changes that wait for a person's tap: nothing the model asks for changes the house
//! until someone in an allowed chat confirms it.

use chrono::{DateTime, Duration, Utc};
use homelab::messages::orchestrator::KnowledgeUpdate;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A confirmation not tapped within this time expires.
pub(crate) const EXPIRES_AFTER_HOURS: i64 = 24;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum Change {
    SetChargingMode {
        mode: String,
    },
    /// The model proposed approving or rejecting one of health-monitor's actions.
    DecideAction {
        action_id: String,
        approve: bool,
    },
    /// health-monitor proposed an action: the buttons approve or reject it.
    ReviewAction {
        action_id: String,
        summary: String,
    },
    RememberFact {
        fact: KnowledgeUpdate,
    },
}

impl Change {
    pub(crate) fn describe(&self) -> String {
        match self {
            Self::SetChargingMode { mode } => format!("set the charging mode to {mode}"),
            Self::DecideAction {
                action_id,
                approve: true,
            } => format!("approve action {action_id}"),
            Self::DecideAction {
                action_id,
                approve: false,
            } => format!("reject action {action_id}"),
            Self::ReviewAction { summary, .. } => summary.clone(),
            Self::RememberFact { fact } => format!("remember: {}", fact.statement),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Pending {
    pub(crate) chat_id: i64,
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) change: Change,
    pub(crate) reason: String,
    /// The message with the buttons, once sent.
    #[serde(default)]
    pub(crate) message_id: Option<i64>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct PendingChanges {
    next_id: u64,
    pub(crate) waiting: BTreeMap<String, Pending>,
    /// health-monitor's actions already offered, so a restart does not offer them again.
    #[serde(default)]
    pub(crate) offered_actions: Vec<String>,
}

impl PendingChanges {
    /// Files a change; its id goes into the buttons' `callback_data` (≤ 64 bytes).
    pub(crate) fn propose(&mut self, pending: Pending) -> String {
        self.next_id += 1;
        let id = format!("p{}", self.next_id);
        self.waiting.insert(id.clone(), pending);
        id
    }

    /// The change for a tap from `chat_id`; a tap from another chat, or on an expired or
    /// already decided change, takes nothing.
    pub(crate) fn take(
        &mut self,
        id: &str,
        chat_id: i64,
        now: DateTime<Utc>,
    ) -> Result<Pending, &'static str> {
        let pending = self
            .waiting
            .get(id)
            .ok_or("this was already decided or has expired")?;
        if pending.chat_id != chat_id {
            return Err("this confirmation belongs to another chat");
        }
        if now - pending.created_at > Duration::hours(EXPIRES_AFTER_HOURS) {
            self.waiting.remove(id);
            return Err("this confirmation has expired; ask again");
        }
        Ok(self.waiting.remove(id).expect("checked above"))
    }

    pub(crate) fn expire(&mut self, now: DateTime<Utc>) -> usize {
        let before = self.waiting.len();
        self.waiting
            .retain(|_, pending| now - pending.created_at <= Duration::hours(EXPIRES_AFTER_HOURS));
        self.offered_actions.truncate(500);
        before - self.waiting.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_is_taken_once_only_by_its_chat_and_not_after_a_day() {
        let now = Utc::now();
        let mut changes = PendingChanges::default();
        let pending = |at| Pending {
            chat_id: 42,
            created_at: at,
            change: Change::SetChargingMode {
                mode: "fast".into(),
            },
            reason: "asked".into(),
            message_id: None,
        };
        let id = changes.propose(pending(now));
        assert!(changes.take(&id, 7, now).is_err());
        assert_eq!(
            changes.take(&id, 42, now).unwrap().change.describe(),
            "set the charging mode to fast"
        );
        assert!(
            changes.take(&id, 42, now).is_err(),
            "a double tap does it once"
        );
        let old = changes.propose(pending(now - Duration::hours(25)));
        assert_eq!(
            changes.take(&old, 42, now).unwrap_err(),
            "this confirmation has expired; ask again"
        );
    }
}
