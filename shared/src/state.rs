//! A typed JSON state file in `DATA_DIR`, written atomically, never fatal to load.

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// On disk: `{"saved_at": "...", "state": {...}}`.
#[derive(Serialize, Deserialize)]
struct OnDisk<T> {
    saved_at: DateTime<Utc>,
    state: T,
}

/// What [`StateStore::load`] found.
#[derive(Debug)]
pub struct Loaded<T> {
    pub state: T,
    /// When it was saved; `None` when the default was used.
    pub saved_at: Option<DateTime<Utc>>,
}

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot write state file {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot serialize state: {0}")]
    Serialize(#[from] serde_json::Error),
    #[error("state write task failed: {0}")]
    Task(String),
}

/// Temp files of [`StateStore::save`]: `.state-XXXXXX.tmp` beside the state file.
const TEMP_PREFIX: &str = ".state-";
const TEMP_SUFFIX: &str = ".tmp";
/// Older temp files are left over from a crash; a save takes milliseconds.
const INTERRUPTED_WRITE_AGE: std::time::Duration = std::time::Duration::from_secs(60);

#[derive(Debug, Clone)]
pub struct StateStore<T> {
    path: PathBuf,
    /// Snapshots are numbered when taken; a write never replaces a newer one.
    order: Arc<WriteOrder>,
    _state: PhantomData<fn() -> T>,
}

#[derive(Debug, Default)]
struct WriteOrder {
    taken: AtomicU64,
    written: Mutex<u64>,
}

/// The state serialized at one moment (under the caller's lock), to be written off the
/// async workers by [`Snapshot::write`].
#[must_use = "a snapshot is only saved by write()"]
pub struct Snapshot {
    path: PathBuf,
    folder: PathBuf,
    bytes: Vec<u8>,
    number: u64,
    order: Arc<WriteOrder>,
}

/// Quarantined copies of a corrupt state file kept for a person to look at.
const CORRUPT_COPIES_KEPT: crate::retention::Keep = crate::retention::Keep {
    max_age: std::time::Duration::from_secs(30 * 86_400),
    max_count: 5,
};

impl<T: Serialize + DeserializeOwned + Default> StateStore<T> {
    /// `DATA_DIR/state.json`.
    pub fn new(data_dir: &Path) -> Self {
        Self::at(data_dir.join("state.json"))
    }

    pub fn at(path: PathBuf) -> Self {
        Self {
            path,
            order: Arc::default(),
            _state: PhantomData,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Missing → default. Unreadable or corrupt → the file is moved aside as
    /// `state.json.corrupt-<timestamp>` (kept for a human to look at: the newest 5, at
    /// most 30 days, and the newest always), a WARN is
    /// logged, and the default is used. Never an error: state is a cache of work done.
    pub fn load(&self) -> Loaded<T> {
        self.remove_interrupted_writes();
        let bytes = match std::fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Self::fresh();
            }
            Err(error) => {
                tracing::warn!(path = %self.path.display(), error = %error, "state_unreadable_using_default");
                return Self::fresh();
            }
        };
        match serde_json::from_slice::<OnDisk<T>>(&bytes) {
            Ok(on_disk) => Loaded {
                state: on_disk.state,
                saved_at: Some(on_disk.saved_at),
            },
            Err(error) => {
                let aside = self.set_aside();
                tracing::warn!(
                    path = %self.path.display(),
                    moved_to = %aside.as_deref().map(|p| p.display().to_string()).unwrap_or_else(|| "-".into()),
                    error = %error,
                    "state_corrupt_using_default"
                );
                Self::fresh()
            }
        }
    }

    /// A crash between creating a temp file and renaming it leaves the temp file behind;
    /// without this they pile up in `DATA_DIR` forever. Only old ones: another store in
    /// the same folder may be writing one right now.
    fn remove_interrupted_writes(&self) {
        let Ok(entries) = std::fs::read_dir(self.folder()) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let is_ours = name.starts_with(TEMP_PREFIX) && name.ends_with(TEMP_SUFFIX);
            let is_old = entry
                .metadata()
                .and_then(|meta| meta.modified())
                .ok()
                .and_then(|modified| modified.elapsed().ok())
                .is_some_and(|age| age > INTERRUPTED_WRITE_AGE);
            if is_ours && is_old {
                match std::fs::remove_file(entry.path()) {
                    Ok(()) => {
                        tracing::info!(path = %entry.path().display(), "state_interrupted_write_removed")
                    }
                    Err(error) => {
                        tracing::warn!(path = %entry.path().display(), error = %error, "state_interrupted_write_not_removed")
                    }
                }
            }
        }
    }

    fn folder(&self) -> &Path {
        self.path
            .parent()
            .filter(|parent| !parent.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
    }

    fn fresh() -> Loaded<T> {
        Loaded {
            state: T::default(),
            saved_at: None,
        }
    }

    fn set_aside(&self) -> Option<PathBuf> {
        let stamp = Utc::now().format("%Y%m%dT%H%M%S%.3fZ");
        let mut name = self.path.file_name()?.to_os_string();
        name.push(format!(".corrupt-{stamp}"));
        let aside = self.path.with_file_name(name);
        match std::fs::rename(&self.path, &aside) {
            Ok(()) => {
                // A file that keeps coming back corrupt must not fill the disk.
                let prefix = format!("{}.corrupt-", self.path.file_name()?.to_string_lossy());
                crate::retention::prune(
                    self.folder(),
                    |name| name.starts_with(&prefix),
                    std::time::SystemTime::now(),
                    CORRUPT_COPIES_KEPT,
                );
                Some(aside)
            }
            Err(error) => {
                tracing::warn!(path = %self.path.display(), error = %error, "state_set_aside_failed");
                None
            }
        }
    }

    /// Serializes `state` now; [`Snapshot::write`] puts it on disk later.
    pub fn snapshot(&self, state: &T) -> Result<Snapshot, StateError> {
        let on_disk = OnDisk {
            saved_at: Utc::now(),
            state,
        };
        Ok(Snapshot {
            path: self.path.clone(),
            folder: self.folder().to_path_buf(),
            bytes: serde_json::to_vec_pretty(&on_disk)?,
            number: self.order.taken.fetch_add(1, Ordering::SeqCst) + 1,
            order: self.order.clone(),
        })
    }

    /// Saves from async code: serialized here, written on the blocking pool (fsync
    /// never stalls an async worker). Take the snapshot under your lock, then await.
    pub async fn save_async(&self, state: &T) -> Result<(), StateError> {
        self.snapshot(state)?.write().await
    }

    /// Saves from plain (blocking) code; see [`Snapshot::write_blocking`].
    pub fn save(&self, state: &T) -> Result<(), StateError> {
        self.snapshot(state)?.write_blocking()
    }
}

impl Snapshot {
    /// Writes on the blocking pool.
    pub async fn write(self) -> Result<(), StateError> {
        tokio::task::spawn_blocking(move || self.write_blocking())
            .await
            .map_err(|error| StateError::Task(error.to_string()))?
    }

    /// Writes a temp file in the same folder, fsyncs it, renames it over the old file
    /// and fsyncs the folder: a crash leaves either the old or the new state, never half.
    /// A snapshot older than the one already written is skipped.
    pub fn write_blocking(self) -> Result<(), StateError> {
        let mut written = self.order.written.lock().expect("poisoned");
        if *written > self.number {
            return Ok(());
        }
        let write_error = |source| StateError::Write {
            path: self.path.clone(),
            source,
        };
        std::fs::create_dir_all(&self.folder).map_err(write_error)?;
        let mut temp = tempfile::Builder::new()
            .prefix(TEMP_PREFIX)
            .suffix(TEMP_SUFFIX)
            .tempfile_in(&self.folder)
            .map_err(write_error)?;
        temp.write_all(&self.bytes).map_err(write_error)?;
        temp.as_file().sync_all().map_err(write_error)?;
        temp.persist(&self.path)
            .map_err(|error| write_error(error.error))?;
        if let Ok(dir) = std::fs::File::open(&self.folder) {
            let _ = dir.sync_all();
        }
        *written = self.number;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
    struct Counter {
        cycles: u64,
    }

    #[test]
    fn temp_files_left_by_a_crash_are_removed_at_load_but_not_fresh_ones() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::<Counter>::new(dir.path());
        store.save(&Counter { cycles: 7 }).unwrap();
        let crashed = dir.path().join(".state-AbC123.tmp");
        let in_flight = dir.path().join(".state-XyZ789.tmp");
        let unrelated = dir.path().join("notes.tmp");
        for path in [&crashed, &in_flight, &unrelated] {
            std::fs::write(path, b"{\"half").unwrap();
        }
        let an_hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        for path in [&crashed, &unrelated] {
            std::fs::File::options()
                .write(true)
                .open(path)
                .unwrap()
                .set_modified(an_hour_ago)
                .unwrap();
        }

        assert_eq!(store.load().state, Counter { cycles: 7 });
        assert!(!crashed.exists(), "a temp file from a crash must go");
        assert!(in_flight.exists(), "another writer's temp file must stay");
        assert!(unrelated.exists(), "only our own temp files");
    }

    #[test]
    fn missing_file_gives_default() {
        let dir = tempfile::tempdir().unwrap();
        let loaded = StateStore::<Counter>::new(dir.path()).load();
        assert_eq!(loaded.state, Counter::default());
        assert!(loaded.saved_at.is_none());
    }

    #[test]
    fn saved_state_loads_back_with_its_time() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::<Counter>::new(&dir.path().join("nested"));
        store.save(&Counter { cycles: 42 }).unwrap();
        let loaded = store.load();
        assert_eq!(loaded.state, Counter { cycles: 42 });
        assert!(loaded.saved_at.is_some());
        let text = std::fs::read_to_string(store.path()).unwrap();
        assert!(text.contains("\"saved_at\""));
        // No temp files left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path().join("nested"))
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("state.json")]);
    }

    #[test]
    fn a_file_corrupt_again_and_again_keeps_only_the_newest_copies() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::<Counter>::new(dir.path());
        for round in 0..8 {
            std::fs::write(store.path(), format!("{{broken {round}")).unwrap();
            let _ = store.load();
            // Distinct modification times and names.
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let mut aside: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.starts_with("state.json.corrupt-"))
            .collect();
        aside.sort();
        assert_eq!(aside.len(), 5, "{aside:?}");
        let newest = std::fs::read_to_string(dir.path().join(aside.last().unwrap())).unwrap();
        assert_eq!(newest, "{broken 7", "the latest evidence is kept");
    }

    #[test]
    fn corrupt_file_is_set_aside_and_default_used() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::<Counter>::new(dir.path());
        std::fs::write(store.path(), b"{not json").unwrap();
        let loaded = store.load();
        assert_eq!(loaded.state, Counter::default());
        let aside: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.starts_with("state.json.corrupt-"))
            .collect();
        assert_eq!(aside.len(), 1, "{aside:?}");
        assert_eq!(
            std::fs::read(dir.path().join(&aside[0])).unwrap(),
            b"{not json"
        );
        assert!(!store.path().exists());
    }

    #[test]
    fn a_state_of_the_wrong_shape_counts_as_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::<Counter>::new(dir.path());
        std::fs::write(
            store.path(),
            br#"{"saved_at":"2026-01-01T00:00:00Z","state":{"cycles":"many"}}"#,
        )
        .unwrap();
        assert_eq!(store.load().state, Counter::default());
    }

    #[tokio::test]
    async fn snapshots_are_written_off_the_workers_and_never_over_a_newer_one() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::<Counter>::new(dir.path());
        let older = store.snapshot(&Counter { cycles: 1 }).unwrap();
        let newer = store.snapshot(&Counter { cycles: 2 }).unwrap();
        newer.write().await.unwrap();
        older.write().await.unwrap();
        assert_eq!(
            store.load().state,
            Counter { cycles: 2 },
            "the older snapshot lost"
        );
        store.save_async(&Counter { cycles: 3 }).await.unwrap();
        assert_eq!(store.load().state, Counter { cycles: 3 });
    }
}
