//! scripts/install-hooks.sh: the pre-commit hook in a temporary git repository.

use repo_checks::repo_root;
use std::path::Path;
use std::process::{Command, Output};

fn git(repo: &Path, args: &[&str]) -> Output {
    Command::new("git")
        .args(args)
        .current_dir(repo)
        .env("GIT_AUTHOR_NAME", "test")
        .env("GIT_AUTHOR_EMAIL", "test@example.invalid")
        .env("GIT_COMMITTER_NAME", "test")
        .env("GIT_COMMITTER_EMAIL", "test@example.invalid")
        .output()
        .unwrap()
}

fn new_repo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    assert!(git(dir.path(), &["init", "-q"]).status.success());
    let install = Command::new("bash")
        .arg(repo_root().join("scripts/install-hooks.sh"))
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        install.status.success(),
        "{}",
        String::from_utf8_lossy(&install.stderr)
    );
    dir
}

fn try_commit(repo: &Path, path: &str, content: &str) -> Output {
    let file = repo.join(path);
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, content).unwrap();
    assert!(git(repo, &["add", "-f", path]).status.success());
    git(repo, &["commit", "-q", "-m", "test"])
}

#[test]
fn the_hook_blocks_each_kind_of_secret() {
    let repo = new_repo();
    // A whole-looking age key, assembled here so that this file itself is no key.
    let fake_key = format!(
        "# created: 2026\nAGE-SECRET-KEY-1{}QY\n",
        "QYQSZQGP".repeat(7)
    );
    // The shape of an HA long-lived token (header.payload.signature), assembled here.
    let fake_token = format!(
        "HA_TOKEN=eyJ{}.eyJ{}.{}\n",
        "hbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9",
        "pc3MiOiIxMjM0NTY3ODkwYWJjZGVmIn0",
        "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_"
    );
    for (path, content, reason) in [
        (".env", "HA_TOKEN=x\n", "plain env file"),
        ("services/x/.env", "A=1\n", "plain env file"),
        (".env.local", "A=1\n", "plain env file"),
        (".env.production", "A=1\n", "plain env file"),
        ("deploy/prod.env", "A=1\n", "plain env file"),
        (
            "notes/ha.txt",
            fake_token.as_str(),
            "Home Assistant access token",
        ),
        (".sops/age-key.txt", "anything\n", ".sops/"),
        ("credentials/google.json", "{}\n", "credentials/"),
        ("notes/backup.txt", fake_key.as_str(), "age private key"),
    ] {
        let output = try_commit(repo.path(), path, content);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{path} was committed");
        assert!(
            stderr.contains(path) && stderr.contains(reason),
            "{path}: {stderr}"
        );
        assert!(git(repo.path(), &["reset", "-q"]).status.success());
        std::fs::remove_file(repo.path().join(path)).unwrap();
    }
    let log = git(repo.path(), &["log", "--oneline"]);
    assert!(
        !log.status.success() || log.stdout.is_empty(),
        "nothing may have been committed"
    );
}

#[test]
fn ordinary_commits_and_the_encrypted_files_pass() {
    let repo = new_repo();
    assert!(try_commit(repo.path(), "README.md", "hello\n")
        .status
        .success());
    assert!(try_commit(repo.path(), ".env.example", "HA_TOKEN=\n")
        .status
        .success());
    assert!(try_commit(
        repo.path(),
        ".env.enc",
        "HA_TOKEN=ENC[AES256_GCM,data:xx]\n"
    )
    .status
    .success());
    assert!(
        try_commit(repo.path(), ".sops.yaml", "creation_rules: []\n")
            .status
            .success()
    );
    // A settings example without secrets, and code that only names the token's prefix.
    assert!(try_commit(
        repo.path(),
        "services/sim-home/demo.env.example",
        "SMART_EV_MODE=pv\n"
    )
    .status
    .success());
    assert!(try_commit(
        repo.path(),
        "src/token.rs",
        "// an HA token starts with eyJ and has three parts\n"
    )
    .status
    .success());
    let count = git(repo.path(), &["rev-list", "--count", "HEAD"]);
    assert_eq!(String::from_utf8_lossy(&count.stdout).trim(), "6");
}

#[test]
fn a_foreign_hook_is_kept_unless_forced() {
    let dir = tempfile::tempdir().unwrap();
    assert!(git(dir.path(), &["init", "-q"]).status.success());
    let hook = dir.path().join(".git/hooks/pre-commit");
    std::fs::write(&hook, "#!/bin/sh\nexit 0\n").unwrap();
    let script = repo_root().join("scripts/install-hooks.sh");
    let refused = Command::new("bash")
        .arg(&script)
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--force"));
    let forced = Command::new("bash")
        .arg(&script)
        .arg("--force")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(forced.status.success());
    assert!(std::fs::read_to_string(&hook)
        .unwrap()
        .contains("homelab secret guard"));
}
