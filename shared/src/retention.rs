//! Cleanup with time-to-live: what a service keeps on disk for a person (quarantined
//! state files, event days) is pruned by age and count, and the newest is never
//! deleted, so the last evidence of a problem stays however old it is.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// How long and how many to keep.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Keep {
    pub max_age: Duration,
    /// At most this many (the newest ones).
    pub max_count: usize,
}

/// Which of `items` (path, last modified) go: beyond the newest `keep.max_count`, or
/// older than `keep.max_age` at `now`. The newest item always stays.
pub fn to_prune(items: &[(PathBuf, SystemTime)], now: SystemTime, keep: Keep) -> Vec<PathBuf> {
    let mut items = items.to_vec();
    // Newest first; the name breaks ties so that the order is stable.
    items.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| b.0.cmp(&a.0)));
    items
        .into_iter()
        .enumerate()
        .skip(1)
        .filter(|(rank, (_, modified))| {
            let too_many = *rank >= keep.max_count.max(1);
            let too_old = now
                .duration_since(*modified)
                .is_ok_and(|age| age > keep.max_age);
            too_many || too_old
        })
        .map(|(_, (path, _))| path)
        .collect()
}

/// Prunes the entries of `dir` whose names `matches` accepts (files or folders).
/// Returns what was removed; an entry that cannot be removed is logged and skipped.
pub fn prune(
    dir: &Path,
    matches: impl Fn(&str) -> bool,
    now: SystemTime,
    keep: Keep,
) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let items: Vec<(PathBuf, SystemTime)> = entries
        .flatten()
        .filter(|entry| matches(&entry.file_name().to_string_lossy()))
        .filter_map(|entry| Some((entry.path(), entry.metadata().ok()?.modified().ok()?)))
        .collect();
    let mut removed = Vec::new();
    for path in to_prune(&items, now, keep) {
        let result = if path.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        match result {
            Ok(()) => {
                tracing::info!(path = %path.display(), "pruned_after_retention");
                removed.push(path);
            }
            Err(error) => {
                tracing::warn!(path = %path.display(), error = %error, "prune_failed");
            }
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Duration = Duration::from_secs(86_400);

    fn at(days_ago: u64, now: SystemTime) -> SystemTime {
        now - DAY * days_ago as u32
    }

    #[test]
    fn old_and_surplus_items_go_and_the_newest_always_stays() {
        let now = SystemTime::UNIX_EPOCH + DAY * 1000;
        let item = |name: &str, days_ago| (PathBuf::from(name), at(days_ago, now));
        let keep = Keep {
            max_age: DAY * 30,
            max_count: 3,
        };
        // (items, what goes)
        type Items = Vec<(PathBuf, SystemTime)>;
        let table: Vec<(Items, Vec<&str>)> = vec![
            (vec![], vec![]),
            (vec![item("only", 400)], vec![]),
            (
                vec![item("a", 1), item("b", 2), item("c", 3), item("d", 4)],
                vec!["d"],
            ),
            (vec![item("new", 40), item("old", 45)], vec!["old"]),
            (
                vec![item("a", 1), item("old", 31), item("b", 2)],
                vec!["old"],
            ),
        ];
        for (items, expected) in table {
            let mut gone = to_prune(&items, now, keep);
            gone.sort();
            let expected: Vec<PathBuf> = expected.into_iter().map(PathBuf::from).collect();
            assert_eq!(gone, expected, "{items:?}");
        }
    }

    #[test]
    fn pruning_removes_matching_files_and_folders_only() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "state.json.corrupt-1",
            "state.json.corrupt-2",
            "state.json",
            "keep.txt",
        ] {
            std::fs::write(dir.path().join(name), "x").unwrap();
        }
        std::fs::create_dir(dir.path().join("state.json.corrupt-0")).unwrap();
        let keep = Keep {
            max_age: DAY,
            max_count: 1,
        };
        let removed = prune(
            dir.path(),
            |name| name.starts_with("state.json.corrupt-"),
            SystemTime::now() + Duration::from_secs(5),
            keep,
        );
        assert_eq!(removed.len(), 2, "{removed:?}");
        let left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|name| name.starts_with("state.json.corrupt-"))
            .collect();
        assert_eq!(left.len(), 1, "the newest stays: {left:?}");
        assert!(dir.path().join("state.json").exists() && dir.path().join("keep.txt").exists());
    }
}
