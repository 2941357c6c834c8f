//! scripts/new-service.sh end to end, in a temporary copy of the repository.

use repo_checks::repo_root;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Copies the files git knows (tracked, and new ones not ignored) into a temp dir.
fn copy_of_repo() -> tempfile::TempDir {
    let root = repo_root();
    let listing = Command::new("git")
        .args([
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ])
        .current_dir(&root)
        .output()
        .unwrap();
    assert!(listing.status.success());
    let copy = tempfile::tempdir().unwrap();
    for path in listing
        .stdout
        .split(|byte| *byte == 0)
        .filter(|path| !path.is_empty())
    {
        let relative = Path::new(std::str::from_utf8(path).unwrap());
        let source = root.join(relative);
        if !source.is_file() {
            continue; // deleted in the working tree
        }
        let target = copy.path().join(relative);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(&source, &target).unwrap();
    }
    copy
}

fn scaffold(repo: &Path, args: &[&str]) -> Output {
    Command::new("bash")
        .arg(repo.join("scripts/new-service.sh"))
        .args(args)
        .output()
        .unwrap()
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Under nextest the outer build lock is free while tests run, so the nested build can
/// share the workspace target dir (registry crates are reused); `cargo test` holds that
/// lock, so there the nested build gets a folder of its own.
fn nested_target_dir() -> PathBuf {
    let outer = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target"));
    if std::env::var_os("NEXTEST").is_some() {
        outer
    } else {
        outer.join("scaffold-check")
    }
}

#[test]
fn bad_and_taken_names_are_refused_and_nothing_is_written() {
    let repo = copy_of_repo();
    for bad in [
        "GarageDoor",
        "garage_door",
        "-garage",
        "garage-",
        "2fast",
        "garage--door",
        "a b",
    ] {
        let output = scaffold(repo.path(), &[bad]);
        assert_eq!(output.status.code(), Some(2), "{bad}: {}", text(&output));
        assert!(
            text(&output).contains("kebab-case"),
            "{bad}: {}",
            text(&output)
        );
    }
    let taken = scaffold(repo.path(), &["example-service"]);
    assert_eq!(taken.status.code(), Some(1));
    assert!(text(&taken).contains("already exists"), "{}", text(&taken));
    // Nothing was written: the files the script would touch are unchanged.
    assert!(!repo.path().join("services/GarageDoor").exists());
    let compose = std::fs::read_to_string(repo.path().join("docker-compose.yml")).unwrap();
    assert_eq!(
        compose,
        std::fs::read_to_string(repo_root().join("docker-compose.yml")).unwrap()
    );
}

#[test]
fn a_scaffolded_service_builds_passes_its_tests_and_answers_diagnose() {
    let repo = copy_of_repo();
    let output = scaffold(repo.path(), &["garage-door"]);
    assert!(output.status.success(), "{}", text(&output));
    let dir = repo.path().join("services/garage-door");
    let main = std::fs::read_to_string(dir.join("src/service.rs")).unwrap();
    assert!(
        main.contains("pub(crate) struct GarageDoorService"),
        "struct renamed"
    );
    assert!(main.contains("const NAME: &'static str = \"garage-door\""));
    assert!(
        !main.contains("Example") && !main.contains("EXAMPLE"),
        "template names left:\n{main}"
    );
    // One Dockerfile serves every service: the new one is only a build argument.
    assert!(!dir.join("Dockerfile").exists());
    let env_example = std::fs::read_to_string(repo.path().join(".env.example")).unwrap();
    assert!(env_example.contains("\nGARAGE_DOOR_INTERVAL_SECONDS=30\n"));
    let compose = std::fs::read_to_string(repo.path().join("docker-compose.yml")).unwrap();
    assert!(compose.contains("  garage-door:\n    <<: *service\n"));
    assert!(compose.contains("      args:\n        SERVICE: garage-door\n"));
    assert!(compose.contains("  garage_door_data:\n"));
    assert!(
        compose.contains("      MQTT_USERNAME: garage-door\n")
            && compose.contains("${MQTT_PASSWORD_GARAGE_DOOR:?"),
        "its own broker identity"
    );
    assert!(env_example.contains("\nMQTT_PASSWORD_GARAGE_DOOR=change-me-garage-door\n"));
    // Its settings reach its container, its password the broker (no env_file).
    assert!(compose.contains("      GARAGE_DOOR_INTERVAL_SECONDS:\n    volumes:"));
    assert!(compose.contains(
        "      MQTT_PASSWORD_GARAGE_DOOR:\n      # new-service.sh inserts new broker identities"
    ));

    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let target = nested_target_dir();
    let tests = Command::new(&cargo)
        .args(["test", "--quiet", "-p", "garage-door"])
        .env("CARGO_TARGET_DIR", &target)
        .current_dir(repo.path())
        .output()
        .unwrap();
    assert!(
        tests.status.success(),
        "the new service's own tests failed:\n{}",
        text(&tests)
    );

    let diagnose = Command::new(target.join("debug/garage-door"))
        .args(["diagnose", "--step", "config"])
        .env_clear()
        .current_dir(repo.path())
        .output()
        .unwrap();
    assert_eq!(diagnose.status.code(), Some(0), "{}", text(&diagnose));
    assert!(
        text(&diagnose).starts_with("garage-door "),
        "{}",
        text(&diagnose)
    );

    // The scaffolded repository still passes the static container checks' key rule.
    let compose: serde_norway::Value = serde_norway::from_str(&compose).unwrap();
    assert!(compose["services"]["garage-door"].is_mapping());
    // It has a true contract, and the broker's contract knows its identity.
    let compose = repo_checks::contracts::compose(repo.path());
    let contracts = repo_checks::contracts::load_contracts(repo.path()).unwrap();
    let env_example = repo_checks::contracts::env_example_keys(repo.path());
    for name in ["garage-door", "mqtt"] {
        let (file, contract) = contracts
            .iter()
            .find(|(_, c)| c.name == name)
            .unwrap_or_else(|| panic!("no contract for {name}"));
        let problems = repo_checks::contracts::contract_problems(
            &file.display().to_string(),
            contract,
            &compose["services"][name],
            &env_example,
            &["/app/service".to_string(), "healthcheck".to_string()],
        );
        assert!(problems.is_empty(), "{problems:#?}");
    }

    // A second run with the same name is refused.
    let again = scaffold(repo.path(), &["garage-door"]);
    assert_eq!(again.status.code(), Some(1));
}
