//! Layer 3a: typed facts (destination, person_pattern, preference, correction, general),
//! one per kind and subject, 0.7 when inferred and 1.0 once a person confirmed it.

use chrono::{DateTime, Utc};
use homelab::messages::orchestrator::{FactKind, KnowledgeUpdate};
use serde::{Deserialize, Serialize};

pub(crate) const INFERRED: f64 = 0.7;
pub(crate) const CONFIRMED: f64 = 1.0;

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct KnowledgeStore {
    pub(crate) facts: Vec<StoredFact>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct StoredFact {
    pub(crate) at: DateTime<Utc>,
    pub(crate) fact: KnowledgeUpdate,
}

impl KnowledgeStore {
    /// A newer fact on the same kind and subject replaces the older one, except that an
    /// inferred fact never replaces a confirmed one.
    pub(crate) fn upsert(&mut self, at: DateTime<Utc>, fact: KnowledgeUpdate) -> bool {
        let same = |stored: &StoredFact| {
            same_kind(stored.fact.kind, fact.kind)
                && stored
                    .fact
                    .subject
                    .trim()
                    .eq_ignore_ascii_case(fact.subject.trim())
        };
        if let Some(existing) = self.facts.iter_mut().find(|stored| same(stored)) {
            if existing.fact.confirmed && !fact.confirmed {
                return false;
            }
            *existing = StoredFact { at, fact };
        } else {
            self.facts.push(StoredFact { at, fact });
        }
        true
    }

    pub(crate) fn matching(&self, words: &str) -> Vec<&StoredFact> {
        let words = words.to_lowercase();
        self.facts
            .iter()
            .filter(|stored| {
                words.is_empty()
                    || stored.fact.subject.to_lowercase().contains(&words)
                    || stored.fact.statement.to_lowercase().contains(&words)
            })
            .collect()
    }
}

/// A correction of a place is about the same thing as its destination fact.
fn same_kind(a: FactKind, b: FactKind) -> bool {
    use FactKind::{Correction, Destination};
    a == b
        || matches!(
            (a, b),
            (Destination, Correction) | (Correction, Destination)
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fact(km: f64, confirmed: bool) -> KnowledgeUpdate {
        KnowledgeUpdate {
            kind: FactKind::Destination,
            subject: "Aachen".into(),
            statement: format!("Aachen is {km} km one way"),
            distance_km: Some(km),
            confidence: if confirmed { CONFIRMED } else { INFERRED },
            confirmed,
        }
    }

    #[test]
    fn an_inferred_fact_never_overrides_a_confirmed_one() {
        let mut store = KnowledgeStore::default();
        assert!(store.upsert(Utc::now(), fact(60.0, false)));
        assert!(store.upsert(
            Utc::now(),
            KnowledgeUpdate {
                kind: FactKind::Correction,
                ..fact(80.0, true)
            }
        ));
        assert!(!store.upsert(Utc::now(), fact(10.0, false)));
        assert_eq!(store.facts.len(), 1);
        assert_eq!(store.facts[0].fact.distance_km, Some(80.0));
        assert_eq!(store.matching("aachen").len(), 1);
    }
}
