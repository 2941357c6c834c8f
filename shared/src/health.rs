//! The health file: a service touches it after each successful cycle; the
//! `healthcheck` subcommand (Docker's HEALTHCHECK in a shell-less image) reads its age.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub fn health_file(data_dir: &Path) -> PathBuf {
    data_dir.join("healthcheck")
}

/// Writes the current Unix time. Failure is logged, never fatal.
pub fn touch(data_dir: &Path) {
    let path = health_file(data_dir);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64();
    let result =
        std::fs::create_dir_all(data_dir).and_then(|()| std::fs::write(&path, format!("{now:.3}")));
    if let Err(error) = result {
        tracing::warn!(path = %path.display(), error = %error, "health_touch_failed");
    }
}

/// `Ok(age)` when the last success is recent enough, else one line saying why not.
pub fn check(data_dir: &Path, max_age: Duration) -> Result<Duration, String> {
    let path = health_file(data_dir);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Err(format!(
                "no health file at {} (the service has not completed a cycle yet)",
                path.display()
            ))
        }
        Err(error) => return Err(format!("cannot read {}: {error}", path.display())),
    };
    let stamp: f64 = text.trim().parse().map_err(|_| {
        format!(
            "{} holds {:?}, not a Unix time",
            path.display(),
            text.trim()
        )
    })?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64();
    let age = (now - stamp).max(0.0);
    if age > max_age.as_secs_f64() {
        return Err(format!(
            "last success {:.0}s ago, limit {}s",
            age,
            max_age.as_secs()
        ));
    }
    Ok(Duration::from_secs_f64(age))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_touch_is_healthy_and_old_or_missing_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let limit = Duration::from_secs(300);
        let missing = check(dir.path(), limit).unwrap_err();
        assert!(missing.contains("no health file"), "{missing}");

        touch(dir.path());
        assert!(check(dir.path(), limit).unwrap() < Duration::from_secs(5));

        let old = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
            - 1000;
        std::fs::write(health_file(dir.path()), old.to_string()).unwrap();
        let stale = check(dir.path(), limit).unwrap_err();
        assert!(stale.contains("limit 300s"), "{stale}");

        std::fs::write(health_file(dir.path()), "yesterday").unwrap();
        assert!(check(dir.path(), limit)
            .unwrap_err()
            .contains("not a Unix time"));
    }
}
