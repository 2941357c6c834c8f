//! Layer 2: what was said and learnt, found again by meaning.
//!
//! `score = (1 − w) × similarity + w × recency`, with `w` = `SEMANTIC_MEMORY_RECENCY_WEIGHT`
//! (0.15), recency halving every `SEMANTIC_MEMORY_RECENCY_HALF_LIFE_DAYS` (30) and
//! entries under 0.5 left out. Similarity is the cosine of the embeddings; where there is
//! no embedding (Anthropic has no embeddings API, or the call failed) it is a BM25
//! keyword rank over the same store, scaled so that the best match is 1.

use crate::settings::MemoryLimits;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

pub(crate) const THRESHOLD: f64 = 0.5;

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct SemanticStore {
    pub(crate) entries: Vec<Entry>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Entry {
    pub(crate) at: DateTime<Utc>,
    /// conversation, fact or decision.
    pub(crate) category: String,
    pub(crate) text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) embedding: Option<Vec<f32>>,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Found {
    pub(crate) score: f64,
    pub(crate) entry: Entry,
}

impl SemanticStore {
    /// Adds an entry; beyond `max_entries` the oldest go (never the one just added).
    pub(crate) fn add(&mut self, entry: Entry, max_entries: usize) {
        self.entries.push(entry);
        if self.entries.len() > max_entries {
            self.entries.sort_by_key(|entry| entry.at);
            let excess = self.entries.len() - max_entries;
            self.entries.drain(..excess);
        }
    }

    /// The best `limit` entries at or above [`THRESHOLD`], best first.
    pub(crate) fn search(
        &self,
        query: &str,
        query_embedding: Option<&[f32]>,
        now: DateTime<Utc>,
        limits: &MemoryLimits,
        limit: usize,
    ) -> Vec<Found> {
        let keyword = Bm25::new(&self.entries).scores(query);
        let best_keyword = keyword.iter().copied().fold(0.0_f64, f64::max);
        let mut found: Vec<Found> = self
            .entries
            .iter()
            .zip(keyword)
            .filter_map(|(entry, keyword_score)| {
                let similarity = match (query_embedding, &entry.embedding) {
                    (Some(query), Some(vector)) if query.len() == vector.len() => {
                        cosine(query, vector)
                    }
                    _ if best_keyword > 0.0 => keyword_score / best_keyword,
                    _ => 0.0,
                };
                let score = (1.0 - limits.recency_weight) * similarity
                    + limits.recency_weight * recency(entry.at, now, limits.half_life_days);
                (score >= THRESHOLD).then(|| Found {
                    score,
                    entry: entry.clone(),
                })
            })
            .collect();
        found.sort_by(|a, b| b.score.total_cmp(&a.score));
        found.truncate(limit);
        found
    }

    /// Nightly: identical texts (the same fact told twice) keep only their newest copy.
    pub(crate) fn consolidate(&mut self) -> usize {
        let before = self.entries.len();
        self.entries
            .sort_by_key(|entry| std::cmp::Reverse(entry.at));
        let mut seen = std::collections::HashSet::new();
        self.entries
            .retain(|entry| seen.insert((entry.category.clone(), normalise(&entry.text))));
        self.entries.sort_by_key(|entry| entry.at);
        before - self.entries.len()
    }
}

fn normalise(text: &str) -> String {
    words(text).collect::<Vec<_>>().join(" ")
}

/// 1 now, ½ after one half-life.
fn recency(at: DateTime<Utc>, now: DateTime<Utc>, half_life_days: f64) -> f64 {
    let age_days = (now - at).num_seconds().max(0) as f64 / 86_400.0;
    0.5_f64.powf(age_days / half_life_days)
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let (mut dot, mut norm_a, mut norm_b) = (0.0_f64, 0.0_f64, 0.0_f64);
    for (x, y) in a.iter().zip(b) {
        let (x, y) = (f64::from(*x), f64::from(*y));
        dot += x * y;
        norm_a += x * x;
        norm_b += y * y;
    }
    if norm_a == 0.0 || norm_b == 0.0 {
        0.0
    } else {
        (dot / (norm_a.sqrt() * norm_b.sqrt())).clamp(-1.0, 1.0)
    }
}

fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|word| word.chars().count() > 1)
        .map(str::to_lowercase)
}

/// Okapi BM25 (k1 = 1.2, b = 0.75) over the store's texts.
struct Bm25 {
    documents: Vec<HashMap<String, usize>>,
    lengths: Vec<usize>,
    document_frequency: HashMap<String, usize>,
    average_length: f64,
}

impl Bm25 {
    fn new(entries: &[Entry]) -> Self {
        let mut document_frequency: HashMap<String, usize> = HashMap::new();
        let mut documents = Vec::with_capacity(entries.len());
        let mut lengths = Vec::with_capacity(entries.len());
        for entry in entries {
            let mut counts: HashMap<String, usize> = HashMap::new();
            let mut length = 0;
            for word in words(&entry.text) {
                *counts.entry(word).or_default() += 1;
                length += 1;
            }
            for word in counts.keys() {
                *document_frequency.entry(word.clone()).or_default() += 1;
            }
            documents.push(counts);
            lengths.push(length);
        }
        let average_length = if lengths.is_empty() {
            1.0
        } else {
            (lengths.iter().sum::<usize>() as f64 / lengths.len() as f64).max(1.0)
        };
        Self {
            documents,
            lengths,
            document_frequency,
            average_length,
        }
    }

    fn scores(&self, query: &str) -> Vec<f64> {
        const K1: f64 = 1.2;
        const B: f64 = 0.75;
        let n = self.documents.len() as f64;
        let terms: Vec<String> = words(query).collect();
        self.documents
            .iter()
            .zip(&self.lengths)
            .map(|(counts, length)| {
                terms
                    .iter()
                    .filter_map(|term| {
                        let frequency = *counts.get(term)? as f64;
                        let containing = self.document_frequency[term] as f64;
                        let idf = ((n - containing + 0.5) / (containing + 0.5) + 1.0).ln();
                        let norm = 1.0 - B + B * (*length as f64) / self.average_length;
                        Some(idf * frequency * (K1 + 1.0) / (frequency + K1 * norm))
                    })
                    .sum()
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn limits() -> MemoryLimits {
        MemoryLimits {
            history: 50,
            decisions: 500,
            notes_chars: 4000,
            semantic_entries: 5000,
            recency_weight: 0.15,
            half_life_days: 30.0,
        }
    }

    fn entry(text: &str, age_days: i64, embedding: Option<Vec<f32>>, now: DateTime<Utc>) -> Entry {
        Entry {
            at: now - Duration::days(age_days),
            category: "fact".into(),
            text: text.into(),
            embedding,
        }
    }

    #[test]
    fn the_same_meaning_told_later_ranks_first_and_unrelated_is_left_out() {
        let now = Utc::now();
        let mut store = SemanticStore::default();
        store.add(entry("old", 60, Some(vec![1.0, 0.0]), now), 10);
        store.add(entry("new", 1, Some(vec![1.0, 0.0]), now), 10);
        store.add(entry("unrelated", 0, Some(vec![0.0, 1.0]), now), 10);
        let found = store.search("q", Some(&[1.0, 0.0]), now, &limits(), 5);
        let texts: Vec<_> = found
            .iter()
            .map(|found| found.entry.text.as_str())
            .collect();
        assert_eq!(texts, ["new", "old"], "{found:?}");
        // 0.85 × 1 + 0.15 × ½^(60/30) = 0.8875
        assert!((found[1].score - 0.8875).abs() < 1e-3, "{}", found[1].score);
        // Unrelated scores 0.85 × 0 + 0.15 × 1 = 0.15, under the threshold.
    }

    #[test]
    fn without_embeddings_keywords_rank_the_store() {
        let now = Utc::now();
        let mut store = SemanticStore::default();
        store.add(entry("Aachen is 80 km one way", 3, None, now), 10);
        store.add(entry("The sauna is on Fridays", 1, None, now), 10);
        store.add(entry("Grandma lives in Köln", 1, None, now), 10);
        let found = store.search("how far is Aachen?", None, now, &limits(), 5);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].entry.text, "Aachen is 80 km one way");
        assert!(store.search("tariff", None, now, &limits(), 5).is_empty());
    }

    #[test]
    fn the_store_keeps_at_most_its_cap_dropping_the_oldest() {
        let now = Utc::now();
        let mut store = SemanticStore::default();
        for i in 0..5_001 {
            store.add(
                entry(
                    &format!("entry {i}"),
                    0,
                    None,
                    now - Duration::seconds(5_001 - i),
                ),
                5_000,
            );
        }
        assert_eq!(store.entries.len(), 5_000);
        assert!(store.entries.iter().all(|entry| entry.text != "entry 0"));
        assert!(store.entries.iter().any(|entry| entry.text == "entry 5000"));
    }

    #[test]
    fn consolidation_keeps_the_newest_copy_of_a_repeated_text() {
        let now = Utc::now();
        let mut store = SemanticStore::default();
        store.add(entry("Aachen is 80 km", 5, None, now), 10);
        store.add(entry("aachen is 80 KM.", 1, None, now), 10);
        store.add(entry("Köln is 70 km", 2, None, now), 10);
        assert_eq!(store.consolidate(), 1);
        assert_eq!(store.entries.len(), 2);
        assert!(store
            .entries
            .iter()
            .any(|entry| entry.text == "aachen is 80 KM."));
    }
}
