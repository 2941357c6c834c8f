//! The dashboard process for the tests and the bench: on a free loopback port, against
//! the given broker, signed-in-able with `password`.

#![allow(dead_code)] // each test file uses its own part

use homelab::testkit::{free_port, Broker, ServiceProcess};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub struct Dashboard {
    pub url: String,
    pub process: ServiceProcess,
    pub data: tempfile::TempDir,
}

pub async fn start(broker: &Broker, password: &str) -> Dashboard {
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let process = ServiceProcess::spawn(
        Command::new(env!("CARGO_BIN_EXE_dashboard"))
            .current_dir(data.path())
            .env_clear()
            .env("MQTT_HOST", "127.0.0.1")
            .env("MQTT_PORT", broker.port().to_string())
            .env("DATA_DIR", data.path())
            .env("HA_URL", "http://127.0.0.1:9")
            .env("DASHBOARD_BIND", "127.0.0.1")
            .env("DASHBOARD_PORT", port.to_string())
            .env("DASHBOARD_PASSWORD", password)
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while reqwest::get(format!("{url}/login")).await.is_err() {
        assert!(Instant::now() < deadline, "the dashboard never listened");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Dashboard { url, process, data }
}
