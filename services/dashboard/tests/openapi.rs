//! schemathesis (from PyPI, installed by scripts/test.sh into
//! ~/.cache/homelab/schemathesis-venv) fuzzes the API from its own OpenAPI document,
//! signed in, with every check: no 5xx, every status and body as documented, invalid
//! input refused. A fixed seed, so a failure here replays.

use homelab::testkit::{free_port, Broker, ServiceProcess};
use serde_json::Value;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

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
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let _dashboard = ServiceProcess::spawn(
        Command::new(env!("CARGO_BIN_EXE_dashboard"))
            .current_dir(data.path())
            .env_clear()
            .env("MQTT_HOST", "127.0.0.1")
            .env("MQTT_PORT", broker.port().to_string())
            .env("DATA_DIR", data.path())
            .env("DASHBOARD_BIND", "127.0.0.1")
            .env("DASHBOARD_PORT", port.to_string())
            .env("DASHBOARD_PASSWORD", "schema-test")
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while reqwest::get(format!("{url}/login")).await.is_err() {
        assert!(Instant::now() < deadline, "the dashboard never listened");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
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
    let overview: Value = client
        .get(format!("{url}/api/v1/overview"))
        .header("Cookie", &cookie)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let csrf = overview["csrf"].as_str().unwrap().to_string();
    let run = tokio::task::spawn_blocking(move || {
        Command::new(binary)
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
