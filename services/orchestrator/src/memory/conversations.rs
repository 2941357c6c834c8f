//! Layer 1: each chat's recent turns, trimmed to `MAX_CONVERSATION_HISTORY`.

use crate::llm::Turn;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct Conversation {
    pub(crate) turns: Vec<StoredTurn>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct StoredTurn {
    pub(crate) at: DateTime<Utc>,
    /// `user` or `assistant`: tool rounds are not kept, only what was said.
    pub(crate) role: String,
    pub(crate) text: String,
}

impl Conversation {
    pub(crate) fn push(&mut self, at: DateTime<Utc>, role: &str, text: &str, keep: usize) {
        self.turns.push(StoredTurn {
            at,
            role: role.to_string(),
            text: text.to_string(),
        });
        let excess = self.turns.len().saturating_sub(keep);
        self.turns.drain(..excess);
    }

    /// What the model sees of the past, oldest first.
    pub(crate) fn as_turns(&self) -> Vec<Turn> {
        self.turns
            .iter()
            .map(|turn| match turn.role.as_str() {
                "assistant" => Turn::Assistant {
                    text: turn.text.clone(),
                    calls: Vec::new(),
                },
                _ => Turn::User {
                    text: turn.text.clone(),
                },
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_turns() {
        let mut conversation = Conversation::default();
        for i in 0..60 {
            conversation.push(
                Utc::now(),
                if i % 2 == 0 { "user" } else { "assistant" },
                &format!("t{i}"),
                50,
            );
        }
        assert_eq!(conversation.turns.len(), 50);
        assert_eq!(conversation.turns[0].text, "t10");
        assert!(matches!(
            conversation.as_turns()[49],
            Turn::Assistant { .. }
        ));
    }
}
