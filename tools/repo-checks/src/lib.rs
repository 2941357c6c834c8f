//! Reading the repository's container files the way Docker does, so that tests can
//! check them without a Docker engine (none runs on our machines or in CI).

pub mod contracts;

use std::path::{Path, PathBuf};

/// The repository root (this crate sits at `tools/repo-checks`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repository root")
}

/// The service folders: `services/<name>/` with a `Cargo.toml`.
pub fn service_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(repo_root().join("services"))
        .expect("services/")
        .filter_map(Result::ok)
        .filter(|entry| entry.path().join("Cargo.toml").is_file())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// One Dockerfile instruction, continuation lines joined.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Instruction {
    /// Upper-case keyword: `FROM`, `RUN`, `HEALTHCHECK`…
    pub keyword: String,
    pub arguments: String,
    /// Index of the build stage (0 = first `FROM`).
    pub stage: usize,
}

/// Parses a Dockerfile: comments and blank lines dropped, `\` continuations joined.
pub fn parse_dockerfile(text: &str) -> Vec<Instruction> {
    let mut instructions = Vec::new();
    let mut pending = String::new();
    let mut stage: Option<usize> = None;
    for line in text.lines() {
        let trimmed = line.trim();
        if pending.is_empty() && (trimmed.is_empty() || trimmed.starts_with('#')) {
            continue;
        }
        if trimmed.starts_with('#') {
            continue; // a comment inside a continued instruction
        }
        if let Some(continued) = trimmed.strip_suffix('\\') {
            pending.push_str(continued);
            pending.push(' ');
            continue;
        }
        pending.push_str(trimmed);
        let full = std::mem::take(&mut pending);
        let (keyword, arguments) = full.split_once(char::is_whitespace).unwrap_or((&full, ""));
        let keyword = keyword.to_ascii_uppercase();
        if keyword == "FROM" {
            stage = Some(stage.map_or(0, |s| s + 1));
        }
        instructions.push(Instruction {
            keyword,
            arguments: arguments.split_whitespace().collect::<Vec<_>>().join(" "),
            stage: stage.unwrap_or(0),
        });
    }
    instructions
}

/// The exec-form (JSON array) arguments of `CMD`/`ENTRYPOINT`, or `None` for shell form.
pub fn exec_form(arguments: &str) -> Option<Vec<String>> {
    serde_json::from_str(arguments).ok()
}

/// Splits `--flag=value` options off the front of an instruction's arguments.
pub fn split_flags(arguments: &str) -> (Vec<(String, String)>, String) {
    let mut flags = Vec::new();
    let mut rest = arguments.trim();
    while let Some(after) = rest.strip_prefix("--") {
        let end = after.find(char::is_whitespace).unwrap_or(after.len());
        let (flag, tail) = after.split_at(end);
        let (name, value) = flag.split_once('=').unwrap_or((flag, ""));
        flags.push((name.to_string(), value.to_string()));
        rest = tail.trim_start();
    }
    (flags, rest.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continuations_stages_and_flags_are_read_like_docker() {
        let text = "# c\nFROM a AS one\nRUN x \\\n    && y\n\nFROM b\nHEALTHCHECK --interval=60s --retries=3 \\\n  CMD [\"/app/s\", \"healthcheck\"]\n";
        let parsed = parse_dockerfile(text);
        assert_eq!(parsed.len(), 4);
        assert_eq!(parsed[1].arguments, "x && y");
        assert_eq!(parsed[1].stage, 0);
        assert_eq!(parsed[3].stage, 1);
        let (flags, rest) = split_flags(&parsed[3].arguments);
        assert_eq!(flags[0], ("interval".into(), "60s".into()));
        assert_eq!(rest, "CMD [\"/app/s\", \"healthcheck\"]");
        assert_eq!(
            exec_form(rest.strip_prefix("CMD ").unwrap()),
            Some(vec!["/app/s".to_string(), "healthcheck".to_string()])
        );
        assert_eq!(exec_form("/app/s healthcheck"), None);
    }
}
