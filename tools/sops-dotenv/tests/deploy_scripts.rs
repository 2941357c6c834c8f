//! scripts/deploy-push.sh and deploy-pull.sh between local git repositories (a bare
//! "origin", a workstation clone, a server clone): no network involved. They live in
//! this crate because they encrypt and decrypt through sops-dotenv.
//!
//! `docker` is the one thing that cannot be real here (no engine on our machines): the
//! pull test puts a stand-in on PATH that records its arguments, and checks them.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn run(dir: &Path, program: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(program);
    command
        .args(args)
        .current_dir(dir)
        .env("SOPS_DOTENV", env!("CARGO_BIN_EXE_sops-dotenv"))
        .env("DEPLOY_RETRY_DELAYS", "0 0 0 0")
        .env("GIT_AUTHOR_NAME", "test")
        .env("GIT_AUTHOR_EMAIL", "test@example.invalid")
        .env("GIT_COMMITTER_NAME", "test")
        .env("GIT_COMMITTER_EMAIL", "test@example.invalid")
        .env_remove("SOPS_AGE_KEY_FILE")
        .stdin(std::process::Stdio::null());
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().unwrap()
}

fn ok(output: Output) -> String {
    let Output {
        status,
        stdout,
        stderr,
    } = output;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&stdout),
        String::from_utf8_lossy(&stderr)
    );
    assert!(status.success(), "{text}");
    text
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

struct Setup {
    _root: tempfile::TempDir,
    origin: PathBuf,
    workstation: PathBuf,
}

/// origin.git with one commit holding the scripts, .gitignore and a README, and a
/// workstation clone with its own age key and a .env.
fn setup() -> Setup {
    let root = tempfile::tempdir().unwrap();
    let origin = root.path().join("origin.git");
    let workstation = root.path().join("workstation");
    ok(run(
        root.path(),
        "git",
        &[
            "init",
            "-q",
            "--bare",
            "-b",
            "main",
            origin.to_str().unwrap(),
        ],
        &[],
    ));
    ok(run(
        root.path(),
        "git",
        &["init", "-q", "-b", "main", workstation.to_str().unwrap()],
        &[],
    ));
    let scripts = workstation.join("scripts/lib");
    std::fs::create_dir_all(&scripts).unwrap();
    for entry in std::fs::read_dir(repo_root().join("scripts"))
        .unwrap()
        .chain(std::fs::read_dir(repo_root().join("scripts/lib")).unwrap())
    {
        let entry = entry.unwrap();
        if entry.path().is_file() {
            let relative = entry
                .path()
                .strip_prefix(repo_root())
                .unwrap()
                .to_path_buf();
            std::fs::copy(entry.path(), workstation.join(relative)).unwrap();
        }
    }
    std::fs::copy(
        repo_root().join(".gitignore"),
        workstation.join(".gitignore"),
    )
    .unwrap();
    std::fs::write(workstation.join("README.md"), "v1\n").unwrap();
    ok(run(&workstation, "bash", &["scripts/secrets-init.sh"], &[]));
    ok(run(&workstation, "git", &["add", "-A"], &[]));
    ok(run(
        &workstation,
        "git",
        &["commit", "-q", "-m", "initial"],
        &[],
    ));
    ok(run(
        &workstation,
        "git",
        &["remote", "add", "origin", origin.to_str().unwrap()],
        &[],
    ));
    ok(run(
        &workstation,
        "git",
        &["push", "-q", "-u", "origin", "main"],
        &[],
    ));
    std::fs::write(
        workstation.join(".env"),
        "HA_TOKEN=secret-token-1\nMQTT_PASSWORD=pw\n",
    )
    .unwrap();
    Setup {
        _root: root,
        origin,
        workstation,
    }
}

/// The server's checkout: a clone of origin beside it.
fn server_clone(setup: &Setup) -> PathBuf {
    let root = setup.origin.parent().unwrap();
    let server = root.join("server");
    let (origin, target) = (setup.origin.to_str().unwrap(), server.to_str().unwrap());
    ok(run(root, "git", &["clone", "-q", origin, target], &[]));
    server
}

fn files_at_origin(setup: &Setup) -> String {
    String::from_utf8(
        run(
            &setup.origin,
            "git",
            &["ls-tree", "-r", "--name-only", "main"],
            &[],
        )
        .stdout,
    )
    .unwrap()
}

#[test]
fn push_commits_tracked_changes_and_env_enc_but_never_untracked_files() {
    let setup = setup();
    std::fs::write(setup.workstation.join("README.md"), "v2\n").unwrap();
    std::fs::write(setup.workstation.join("notes.txt"), "private scratch\n").unwrap();
    let output = ok(run(
        &setup.workstation,
        "bash",
        &["scripts/deploy-push.sh", "-y", "deploy one"],
        &[],
    ));
    assert!(
        output.contains("not added") && output.contains("  notes.txt"),
        "{output}"
    );
    let files = files_at_origin(&setup);
    assert!(
        files.contains(".env.enc") && files.contains("README.md"),
        "{files}"
    );
    assert!(
        !files.contains("notes.txt")
            && !files.lines().any(|f| f == ".env")
            && !files.contains(".sops/"),
        "{files}"
    );
    let log =
        String::from_utf8(run(&setup.origin, "git", &["log", "--format=%s", "main"], &[]).stdout)
            .unwrap();
    assert_eq!(log.lines().next(), Some("deploy one"));
    let enc = String::from_utf8(run(&setup.origin, "git", &["show", "main:.env.enc"], &[]).stdout)
        .unwrap();
    assert!(enc.contains("HA_TOKEN=ENC[AES256_GCM") && !enc.contains("secret-token-1"));
}

#[test]
fn push_without_yes_and_without_a_terminal_asks_and_aborts() {
    let setup = setup();
    std::fs::write(setup.workstation.join("README.md"), "v2\n").unwrap();
    let output = run(
        &setup.workstation,
        "bash",
        &["scripts/deploy-push.sh", "not confirmed"],
        &[],
    );
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(text(&output).contains("aborted"));
    assert!(
        !files_at_origin(&setup).contains(".env.enc"),
        "nothing was pushed"
    );
    let bad = run(&setup.workstation, "bash", &["scripts/deploy-push.sh"], &[]);
    assert_eq!(bad.status.code(), Some(2), "a message is required");
}

#[test]
fn push_retries_until_the_remote_answers() {
    let setup = setup();
    let moved = setup.origin.with_extension("away");
    std::fs::rename(&setup.origin, &moved).unwrap();
    let (away, back) = (moved.clone(), setup.origin.clone());
    let restore = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(1500));
        std::fs::rename(away, back).unwrap();
    });
    let output = run(
        &setup.workstation,
        "bash",
        &["scripts/deploy-push.sh", "-y", "late remote"],
        &[("DEPLOY_RETRY_DELAYS", "1 1 1 1")],
    );
    restore.join().unwrap();
    let output = ok(output);
    assert!(
        output.contains("git push failed; retrying in 1s"),
        "{output}"
    );
    assert!(output.contains("pushed main"));
}

fn fake_docker(dir: &Path) -> (PathBuf, PathBuf) {
    let bin = dir.join("fake-bin");
    std::fs::create_dir_all(&bin).unwrap();
    let log = dir.join("docker.log");
    std::fs::write(
        bin.join("docker"),
        format!("#!/bin/sh\necho \"$*\" >> {}\n", log.display()),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(bin.join("docker"), std::fs::Permissions::from_mode(0o755)).unwrap();
    (bin, log)
}

#[test]
fn pull_fast_forwards_decrypts_and_starts_the_stack() {
    let setup = setup();
    let server = server_clone(&setup);
    std::fs::write(setup.workstation.join("README.md"), "v2\n").unwrap();
    ok(run(
        &setup.workstation,
        "bash",
        &["scripts/deploy-push.sh", "-y", "to the server"],
        &[],
    ));

    std::fs::create_dir_all(server.join(".sops")).unwrap();
    std::fs::copy(
        setup.workstation.join(".sops/age-key.txt"),
        server.join(".sops/age-key.txt"),
    )
    .unwrap();
    let (bin, log) = fake_docker(&server);
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let output = ok(run(
        &server,
        "bash",
        &["scripts/deploy-pull.sh"],
        &[("PATH", &path)],
    ));
    assert!(output.contains("updated to"), "{output}");
    assert_eq!(
        std::fs::read_to_string(server.join("README.md")).unwrap(),
        "v2\n"
    );
    assert_eq!(
        std::fs::read_to_string(server.join(".env")).unwrap(),
        "HA_TOKEN=secret-token-1\nMQTT_PASSWORD=pw\n"
    );
    let calls = std::fs::read_to_string(&log).unwrap();
    let calls: Vec<&str> = calls.lines().collect();
    assert_eq!(
        calls,
        [
            "info",
            "build --file base/Dockerfile --target base --tag homelab-base:latest .",
            "compose up --build -d"
        ]
    );
}

#[test]
fn pull_keeps_an_existing_env_without_a_key_and_fails_with_neither() {
    let setup = setup();
    let server = server_clone(&setup);
    let (bin, _log) = fake_docker(&server);
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());

    let neither = run(
        &server,
        "bash",
        &["scripts/deploy-pull.sh"],
        &[("PATH", &path)],
    );
    assert_eq!(neither.status.code(), Some(1));
    assert!(
        text(&neither).contains("no .env and no age key"),
        "{}",
        text(&neither)
    );

    std::fs::write(server.join(".env"), "KEEP=me\n").unwrap();
    let kept = ok(run(
        &server,
        "bash",
        &["scripts/deploy-pull.sh"],
        &[("PATH", &path)],
    ));
    assert!(kept.contains("keeping the existing .env"), "{kept}");
    assert_eq!(
        std::fs::read_to_string(server.join(".env")).unwrap(),
        "KEEP=me\n"
    );
}

#[test]
fn pull_aborts_on_diverged_history_and_changes_nothing() {
    let setup = setup();
    let server = server_clone(&setup);
    std::fs::write(server.join("README.md"), "edited on the server\n").unwrap();
    ok(run(
        &server,
        "git",
        &["commit", "-q", "-am", "server-side edit"],
        &[],
    ));
    let before = run(&server, "git", &["rev-parse", "HEAD"], &[]).stdout;
    std::fs::write(setup.workstation.join("README.md"), "v2\n").unwrap();
    ok(run(
        &setup.workstation,
        "bash",
        &["scripts/deploy-push.sh", "-y", "diverging"],
        &[],
    ));

    let output = run(&server, "bash", &["scripts/deploy-pull.sh"], &[]);
    assert_eq!(output.status.code(), Some(1));
    assert!(text(&output).contains("diverged"), "{}", text(&output));
    assert_eq!(
        run(&server, "git", &["rev-parse", "HEAD"], &[]).stdout,
        before
    );
    assert_eq!(
        std::fs::read_to_string(server.join("README.md")).unwrap(),
        "edited on the server\n"
    );
}
