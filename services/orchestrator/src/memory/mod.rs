//! The assistant's memory (seed 000 §11), in files under `DATA_DIR/memory/`, each
//! written atomically (temp file + rename, by `homelab::StateStore`):
//! - `conversations/<chat>.json`: the last `MAX_CONVERSATION_HISTORY` turns per chat;
//! - `decisions.json`: every state change the assistant asked for, confirmed or not, and why;
//! - `semantic_store.json`: what was said and learnt, ranked by meaning and recency;
//! - `knowledge.json`: typed facts, published to the other services;
//! - `pending.json`: changes waiting for a person's tap;
//! - `memory.md`: the assistant's own notes, in every system prompt.

pub(crate) mod conversations;
pub(crate) mod decisions;
pub(crate) mod knowledge;
pub(crate) mod notes;
pub(crate) mod pending;
pub(crate) mod semantic;

use homelab::StateStore;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::sync::Mutex;

/// A value kept in memory and in its file: changed under the lock, then written off
/// the async workers (a later snapshot is never overwritten by an earlier one).
pub(crate) struct Persisted<T> {
    value: Mutex<T>,
    store: StateStore<T>,
}

impl<T: Serialize + DeserializeOwned + Default> Persisted<T> {
    pub(crate) fn load(path: std::path::PathBuf) -> Self {
        let store = StateStore::at(path);
        let loaded = store.load();
        Self {
            value: Mutex::new(loaded.state),
            store,
        }
    }

    pub(crate) fn read<R>(&self, read: impl FnOnce(&T) -> R) -> R {
        read(&self.value.lock().expect("poisoned"))
    }

    /// Changes the value and saves it; a failed save is logged and the change kept in
    /// memory (the next save carries it).
    pub(crate) async fn update<R>(&self, change: impl FnOnce(&mut T) -> R) -> R {
        let (result, snapshot) = {
            let mut value = self.value.lock().expect("poisoned");
            let result = change(&mut value);
            (result, self.store.snapshot(&value))
        };
        if let Err(error) = async { snapshot?.write().await }.await {
            tracing::warn!(path = %self.store.path().display(), error = %error, "memory_save_failed");
        }
        result
    }
}
