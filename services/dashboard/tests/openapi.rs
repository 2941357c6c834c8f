//! schemathesis (from PyPI, installed by scripts/test.sh into
//! ~/.cache/homelab/schemathesis-venv) fuzzes the API from its own OpenAPI document,
//! signed in, with every check: no 5xx, every status and body as documented, invalid
//! input refused. A fixed seed, so a failure here replays. The house's messages are
//! published first, so the overview it checks carries every kind of message the
//! schemas (generated from the shared types) describe.

mod common;

use homelab::testkit::{Broker, Probe};
use serde_json::Value;
use std::process::Command;

fn schemathesis() -> std::path::PathBuf {
    let venv = std::env::var_os("HOMELAB_SCHEMATHESIS_VENV")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::PathBuf::from(std::env::var("HOME").unwrap())
                .join(".cache/homelab/schemathesis-venv")
        });
    let binary = venv.join("bin/schemathesis");
    assert!(
        binary.exists(),
        "{} is missing: scripts/test.sh installs it (scripts/schemathesis-test-requirements.txt)",
        binary.display()
    );
    binary
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_nothing_the_openapi_document_does_not_say() {
    let binary = schemathesis();
    let broker = Broker::start();
    // Kept to the end: a dropped probe stops sending what it has queued.
    let house = Probe::connect(broker.port(), &[]).await;
    common::publish_a_house(&house).await;
    let dashboard = common::start(&broker, "schema-test").await;
    let url = dashboard.url.clone();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let signed_in = client
        .post(format!("{url}/login"))
        .form(&[("username", "admin"), ("password", "schema-test")])
        .send()
        .await
        .unwrap();
    let cookie = signed_in.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let overview = loop {
        let overview: Value = client
            .get(format!("{url}/api/v1/overview"))
            .header("Cookie", &cookie)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let filled = ["health", "charging", "pv", "plan"]
            .iter()
            .all(|part| !overview[part].is_null());
        if filled && overview["services"].as_object().unwrap().len() >= 3 {
            break overview;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the dashboard never read the house: {overview}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let csrf = overview["csrf"].as_str().unwrap().to_string();
    // schemathesis keeps a cache in its working folder: not in the repository.
    let scratch = tempfile::tempdir().unwrap();
    let scratch_path = scratch.path().to_path_buf();
    let run = tokio::task::spawn_blocking(move || {
        Command::new(binary)
            .current_dir(&scratch_path)
            .args([
                "run",
                &format!("{url}/api/v1/openapi.json"),
                "--checks",
                "all",
            ])
            .args(["--max-examples", "100", "--seed", "20261130"])
            .args(["-H", &format!("Cookie: {cookie}")])
            .args(["-H", &format!("X-CSRF-Token: {csrf}")])
            .env("NO_COLOR", "1")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let report =
        String::from_utf8_lossy(&run.stdout).to_string() + &String::from_utf8_lossy(&run.stderr);
    assert!(
        run.status.success(),
        "schemathesis found problems:\n{report}"
    );
    assert!(report.contains("passed"), "{report}");
}
