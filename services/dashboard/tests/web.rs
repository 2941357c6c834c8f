//! The dashboard as a process against a real mosquitto, driven over HTTP: sign-in and
//! its limits, the page showing what MQTT says, the two commands observed on the
//! broker, and live updates over Server-Sent Events.

use futures_util::StreamExt;
use homelab::mqtt::QoS;
use homelab::testkit::{free_port, Broker, Probe, ServiceProcess};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;

const PASSWORD: &str = "correct-horse-battery";

async fn start(broker: &Broker) -> common::Dashboard {
    common::start(broker, PASSWORD).await
}

fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn sign_in(client: &reqwest::Client, url: &str) -> reqwest::Response {
    client
        .post(format!("{url}/login"))
        .form(&[("username", "admin"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap()
}

async fn csrf(client: &reqwest::Client, url: &str) -> String {
    let overview: Value = client
        .get(format!("{url}/api/v1/overview"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    overview["csrf"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_session_nothing_is_shown_and_failed_sign_ins_are_limited() {
    let broker = Broker::start();
    let dashboard = start(&broker).await;
    let client = browser();
    let page = client.get(&dashboard.url).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::SEE_OTHER);
    assert_eq!(page.headers()["location"], "/login");
    // The API's description is public; each documented call answers 401 without a session.
    let document: Value = client
        .get(format!("{}/api/v1/openapi.json", dashboard.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(document["openapi"], "3.1.0");
    for (path, methods) in document["paths"].as_object().unwrap() {
        for method in methods.as_object().unwrap().keys() {
            let concrete = path
                .replace("{id}", "restart-x")
                .replace("{verb}", "approve");
            let response = client
                .request(
                    method.to_uppercase().parse().unwrap(),
                    format!("{}{concrete}", dashboard.url),
                )
                .json(&json!({"mode": "pv"}))
                .send()
                .await
                .unwrap();
            assert_eq!(
                response.status(),
                StatusCode::UNAUTHORIZED,
                "{method} {path}"
            );
            assert!(
                methods[method]["responses"].get("401").is_some(),
                "{method} {path} does not document its 401"
            );
        }
    }
    for path in ["/api/v1/overview", "/events", "/section/services"] {
        let response = client
            .get(format!("{}{path}", dashboard.url))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{path}");
    }
    for _ in 0..5 {
        let wrong = client
            .post(format!("{}/login", dashboard.url))
            .form(&[("username", "admin"), ("password", "guess")])
            .send()
            .await
            .unwrap();
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    }
    let limited = sign_in(&client, &dashboard.url).await;
    assert_eq!(
        limited.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "even the right password"
    );
    assert!(limited.headers().contains_key("retry-after"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_shows_the_house_and_its_commands_reach_the_broker() {
    let broker = Broker::start();
    let probe = Probe::connect(broker.port(), &[]).await;
    for service in ["pv-forecast", "smart-ev-charging"] {
        let beat = json!({"status": "online", "service": service, "version": "1.2.3", "interval_seconds": 60});
        probe
            .publish(
                &format!("homelab/{service}/heartbeat"),
                beat.to_string(),
                QoS::AtLeastOnce,
                true,
            )
            .await;
    }
    let status = json!({"node": "main", "layers": {}, "services": {}, "containers": [],
        "issues": [{"id": "service_down:ev-forecast", "severity": "critical", "summary": "ev-forecast is down", "since": "2026-11-30T12:00:00Z"}],
        "pending_actions": [{"id": "restart-homelab-ev-forecast-1-20261130T120000Z", "kind": "container_restart",
            "target": "homelab-ev-forecast-1", "reason": "exited", "created_at": "2026-11-30T12:00:00Z"}],
        "alerts_waiting": 0,
        "recent_actions": [{"id": "restart-homelab-pv-forecast-1-20261129T080000Z", "target": "homelab-pv-forecast-1",
            "stage": "completed", "decided_by": "anna", "finished_at": "2026-11-29T08:03:00Z", "outcome": "running again (health: starting)"}],
        "recent_events": [{"ts": "2026-11-30T12:00:00+00:00", "type": "service_unhealthy", "text": "ev-forecast is down"}]});
    probe
        .publish(
            "homelab/health-monitor/status",
            status.to_string(),
            QoS::AtLeastOnce,
            true,
        )
        .await;
    let mut commands = Probe::connect(
        broker.port(),
        &[
            "homelab/smart-ev-charging/entity/mode/set",
            "homelab/health-monitor/actions/+/+",
        ],
    )
    .await;
    let dashboard = start(&broker).await;
    let client = browser();

    let signed_in = sign_in(&client, &dashboard.url).await;
    assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
    let cookie = signed_in.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );

    let page = client
        .get(&dashboard.url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for shown in [
        "pv-forecast",
        "smart-ev-charging",
        "1.2.3",
        "ev-forecast is down",
        "restart-homelab-ev-forecast-1-20261130T120000Z",
        "service unhealthy",
        "running again (health: starting)",
        "anna",
    ] {
        assert!(page.contains(shown), "{shown} not on the page");
    }

    // A command without the page's CSRF token is refused and sends nothing.
    let forged = client
        .post(format!("{}/charging/mode", dashboard.url))
        .form(&[("mode", "fast"), ("csrf", "forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    let token = csrf(&client, &dashboard.url).await;
    let bad_mode = client
        .post(format!("{}/api/v1/charging/mode", dashboard.url))
        .header("X-CSRF-Token", &token)
        .json(&json!({"mode": "turbo"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad_mode.status(), StatusCode::BAD_REQUEST);
    assert!(bad_mode
        .text()
        .await
        .unwrap()
        .contains("off, pv, min_pv, fast, smart"));
    let sent = client
        .post(format!("{}/charging/mode", dashboard.url))
        .form(&[("mode", "smart"), ("csrf", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status(), StatusCode::SEE_OTHER);
    let command = commands
        .next(Duration::from_secs(2))
        .await
        .expect("the mode command");
    assert_eq!(command.topic, "homelab/smart-ev-charging/entity/mode/set");
    assert_eq!(&command.payload[..], b"smart", "what HA's select sends");

    let approved = client
        .post(format!(
            "{}/api/v1/actions/restart-homelab-ev-forecast-1-20261130T120000Z/approve",
            dashboard.url
        ))
        .header("X-CSRF-Token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(approved.status(), StatusCode::ACCEPTED);
    let decision = commands
        .next(Duration::from_secs(2))
        .await
        .expect("the approval");
    assert_eq!(
        decision.topic,
        "homelab/health-monitor/actions/restart-homelab-ev-forecast-1-20261130T120000Z/approve"
    );
    assert_eq!(decision.json()["by"], "admin");
    assert!(
        commands.next(Duration::from_millis(300)).await.is_none(),
        "nothing else was sent"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
/// Its speed is the bench's job (`cargo bench -p dashboard`, goal 300 ms); here: it arrives.
async fn a_heartbeat_reaches_an_open_page_as_an_update() {
    let broker = Broker::start();
    let probe = Probe::connect(broker.port(), &[]).await;
    let dashboard = start(&broker).await;
    let client = browser();
    sign_in(&client, &dashboard.url).await;
    let events = client
        .get(format!("{}/events", dashboard.url))
        .send()
        .await
        .unwrap();
    assert_eq!(events.status(), StatusCode::OK);
    let mut stream = events.bytes_stream();
    // On connecting, one update per section: what changed since the page was rendered.
    let mut first = String::new();
    while !["services", "energy", "charging", "actions"]
        .iter()
        .all(|section| first.contains(&format!("data: {section}")))
    {
        let chunk = tokio::time::timeout(Duration::from_secs(2), stream.next())
            .await
            .expect("the catch-up updates")
            .unwrap()
            .unwrap();
        first.push_str(&String::from_utf8_lossy(&chunk));
    }
    for n in 0..5 {
        let beat =
            json!({"status": "online", "service": format!("svc-{n}"), "interval_seconds": 60});
        probe
            .publish(
                &format!("homelab/svc-{n}/heartbeat"),
                beat.to_string(),
                QoS::AtLeastOnce,
                false,
            )
            .await;
        let mut seen = String::new();
        while !seen.contains("data: services") {
            let chunk = tokio::time::timeout(Duration::from_secs(2), stream.next())
                .await
                .expect("an update within 2 s")
                .unwrap()
                .unwrap();
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
        let section = client
            .get(format!("{}/section/services", dashboard.url))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            section.contains(&format!("svc-{n}")),
            "the section shows it"
        );
    }
}

#[tokio::test]
async fn without_a_password_it_refuses_the_network_and_generates_one_for_loopback() {
    let broker = Broker::start();
    let data = tempfile::tempdir().unwrap();
    let command = |bind: &str| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_dashboard"));
        command
            .current_dir(data.path())
            .env_clear()
            .env("MQTT_HOST", "127.0.0.1")
            .env("MQTT_PORT", broker.port().to_string())
            .env("DATA_DIR", data.path())
            .env("DASHBOARD_BIND", bind)
            .env("DASHBOARD_PORT", free_port().to_string());
        command
    };
    let refused = command("0.0.0.0").output().unwrap();
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stdout).to_string()
        + &String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains("DASHBOARD_PASSWORD is empty"), "{said}");

    let _local = ServiceProcess::spawn(
        command("127.0.0.1")
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    let file = data.path().join("dashboard-password");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !file.exists() {
        assert!(Instant::now() < deadline, "no generated password file");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "only its user may read it");
    assert!(std::fs::read_to_string(&file).unwrap().trim().len() >= 32);
}

/// Docker's HEALTHCHECK runs `dashboard healthcheck`: healthy once the page answers.
#[tokio::test]
async fn the_healthcheck_passes_once_the_page_answers() {
    let broker = Broker::start();
    let dashboard = start(&broker).await;
    let healthcheck = || {
        Command::new(env!("CARGO_BIN_EXE_dashboard"))
            .arg("healthcheck")
            .env_clear()
            .env("DATA_DIR", dashboard.data.path())
            .output()
            .unwrap()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut last = healthcheck();
    while !last.status.success() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        last = healthcheck();
    }
    assert!(
        last.status.success(),
        "{}",
        String::from_utf8_lossy(&last.stdout)
    );
}
