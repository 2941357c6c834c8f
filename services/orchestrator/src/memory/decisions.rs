//! The decision log: each state change the assistant proposed, why, and what became of it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct DecisionLog {
    pub(crate) entries: Vec<Decision>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Decision {
    pub(crate) at: DateTime<Utc>,
    pub(crate) chat_id: i64,
    /// What was to change, e.g. `set_charging_mode fast`.
    pub(crate) action: String,
    /// The model's reason, or the person's words.
    pub(crate) reason: String,
    /// proposed, confirmed, cancelled, failed: ...
    pub(crate) outcome: String,
    #[serde(default)]
    pub(crate) by: Option<String>,
}

impl DecisionLog {
    pub(crate) fn record(&mut self, decision: Decision, keep: usize) {
        tracing::info!(
            chat_id = decision.chat_id,
            action = %decision.action,
            reason = %decision.reason,
            outcome = %decision.outcome,
            by = ?decision.by,
            "decision_logged"
        );
        self.entries.push(decision);
        let excess = self.entries.len().saturating_sub(keep);
        self.entries.drain(..excess);
    }
}
