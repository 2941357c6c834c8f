//! pv-forecast as a user runs it: the real binary and the real mosquitto. Open-Meteo
//! is a loopback server that replays the saved answer (tests/fixtures), its dates moved
//! to today and tomorrow, as sim-home serves its season's sky on today's dates; the
//! sun is placed on the sky's date (`PV_FORECAST_SUN_DATE`, as run-local.sh sets it).
//! Home Assistant is unreachable here, so the service stays on its physical model
//! (the learned path is covered by the unit tests and sim-home).

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use homelab::testkit::{free_port, Broker, Probe, ServiceProcess};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

const FIXTURE: &str = include_str!("fixtures/open-meteo-forecast.json");

#[derive(Default)]
struct FakeOpenMeteo {
    down: AtomicBool,
    requests: AtomicUsize,
}

async fn forecast(State(fake): State<Arc<FakeOpenMeteo>>) -> (StatusCode, String) {
    fake.requests.fetch_add(1, Ordering::SeqCst);
    if fake.down.load(Ordering::SeqCst) {
        return (StatusCode::SERVICE_UNAVAILABLE, "upstream timeout".into());
    }
    let today = chrono::Utc::now().date_naive();
    let body = FIXTURE
        .replace("2026-06-21", &today.succ_opt().unwrap().to_string())
        .replace("2026-06-20", &today.to_string());
    (StatusCode::OK, body)
}

async fn start_open_meteo() -> (u16, Arc<FakeOpenMeteo>) {
    let fake = Arc::new(FakeOpenMeteo::default());
    let app = axum::Router::new()
        .route("/v1/forecast", get(forecast))
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (port, fake)
}

fn spawn(broker: &Broker, weather_port: u16, data: &std::path::Path) -> ServiceProcess {
    ServiceProcess::spawn(
        Command::new(env!("CARGO_BIN_EXE_pv-forecast"))
            .current_dir(data)
            .env_clear()
            .env("MQTT_HOST", "127.0.0.1")
            .env("MQTT_PORT", broker.port().to_string())
            .env("DATA_DIR", data)
            .env("TIMEZONE", "UTC")
            .env("HA_URL", format!("http://127.0.0.1:{}", free_port()))
            .env("HA_TOKEN", "not-used")
            .env("HOME_LATITUDE", "52.0")
            .env("HOME_LONGITUDE", "7.6")
            .env("PV_FORECAST_ARRAYS", "5/30/180,3/30/90")
            .env(
                "PV_FORECAST_OPEN_METEO_URL",
                format!("http://127.0.0.1:{weather_port}"),
            )
            .env("PV_FORECAST_STALE_AFTER_SECONDS", "3")
            .env("PV_FORECAST_SUN_DATE", "2026-06-20")
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )
}

const UPDATED: &str = "homelab/pv-forecast/updated";
const COMMAND: &str = "homelab/orchestrator/command/pv-forecast";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishes_a_forecast_keeps_the_last_good_one_and_marks_it_stale() {
    let broker = Broker::start();
    let (weather_port, open_meteo) = start_open_meteo().await;
    let data = tempfile::tempdir().unwrap();
    let mut probe = Probe::connect(
        broker.port(),
        &[
            UPDATED,
            "homelab/pv-forecast/entity/#",
            "homeassistant/sensor/homelab_pv_forecast/#",
        ],
    )
    .await;
    let service = spawn(&broker, weather_port, data.path());

    let first = probe
        .wait_for(UPDATED, Duration::from_secs(20), |v| v["stale"] == false)
        .await
        .expect("a forecast is published at start");
    // What smart-ev-charging reads it as (the shared type), from the wire.
    let typed: homelab::messages::pv_forecast::Updated = serde_json::from_value(first.clone())
        .unwrap_or_else(|error| panic!("the consumer cannot read the forecast ({error}): {first}"));
    assert_eq!(typed.today.len(), 24);
    assert!(!typed.stale);
    assert_eq!(
        first["model"], "physical",
        "no history reachable: the physics"
    );
    assert_eq!(first["today"].as_array().unwrap().len(), 24, "{first}");
    let today = first["today_kwh"].as_f64().unwrap();
    let tomorrow = first["tomorrow_kwh"].as_f64().unwrap();
    assert!(
        (25.0..60.0).contains(&today),
        "8 kWp on a clear June day: {today}"
    );
    assert!(
        tomorrow < today,
        "clouds build tomorrow: {tomorrow} vs {today}"
    );
    // Sky and sun of the same day: no hour above what 8 kWp can make.
    assert!(
        typed
            .today
            .iter()
            .chain(&typed.tomorrow)
            .all(|h| h.kwh <= 8.0),
        "{first}"
    );
    let remaining = first["today_remaining_kwh"].as_f64().unwrap();
    assert!((0.0..=today).contains(&remaining));

    // HA gets the sensors by discovery, and their states; the forecast itself too (all
    // retained: a client that starts later sees them at once).
    let mut late = Probe::connect(
        broker.port(),
        &[
            UPDATED,
            "homelab/pv-forecast/entity/#",
            "homeassistant/sensor/homelab_pv_forecast/#",
        ],
    )
    .await;
    let seen = late.drain(Duration::from_millis(500)).await;
    let retained = seen
        .iter()
        .find(|m| m.topic == UPDATED)
        .expect("the forecast is retained for late subscribers");
    assert!(retained.retain);
    assert_eq!(retained.json()["generated_at"], first["generated_at"]);
    let config = seen
        .iter()
        .find(|m| m.topic == "homeassistant/sensor/homelab_pv_forecast/tomorrow_total/config")
        .expect("a discovery config for tomorrow_total");
    assert_eq!(config.json()["unit_of_measurement"], "kWh");
    let state = seen
        .iter()
        .find(|m| m.topic == "homelab/pv-forecast/entity/tomorrow_total/state")
        .expect("the tomorrow_total state");
    let state: f64 = std::str::from_utf8(&state.payload)
        .unwrap()
        .parse()
        .unwrap();
    assert!((state - tomorrow).abs() < 1e-6);

    // Open-Meteo goes down; a refresh keeps serving the last good forecast, stale once old.
    open_meteo.down.store(true, Ordering::SeqCst);
    let before = open_meteo.requests.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(3)).await;
    probe
        .publish_json(COMMAND, &serde_json::json!({"command": "refresh"}))
        .await;
    let kept = probe
        .wait_for(UPDATED, Duration::from_secs(30), |v| v["stale"] == true)
        .await
        .expect("the last forecast, marked stale");
    assert!(
        open_meteo.requests.load(Ordering::SeqCst) > before,
        "the refresh asked Open-Meteo"
    );
    assert_eq!(kept["generated_at"], first["generated_at"]);
    assert_eq!(kept["tomorrow_kwh"], first["tomorrow_kwh"]);
    drop(service);

    // After a restart, still down: the forecast comes from the state file.
    let mut probe = Probe::connect(broker.port(), &[UPDATED]).await;
    let _service = spawn(&broker, weather_port, data.path());
    let restored = probe
        .wait_for(UPDATED, Duration::from_secs(40), |v| {
            v["generated_at"] == first["generated_at"]
        })
        .await
        .expect("the kept forecast after a restart");
    assert_eq!(restored["stale"], true);
}

#[test]
fn a_wrong_array_or_missing_location_stops_start_up_with_the_variable_named() {
    let data = tempfile::tempdir().unwrap();
    let run = |vars: &[(&str, &str)]| {
        let output = Command::new(env!("CARGO_BIN_EXE_pv-forecast"))
            .current_dir(data.path())
            .env_clear()
            .env("DATA_DIR", data.path())
            .env("MQTT_PORT", free_port().to_string())
            .envs(vars.iter().copied())
            .output()
            .unwrap();
        assert!(!output.status.success());
        String::from_utf8_lossy(&output.stderr).into_owned()
            + &String::from_utf8_lossy(&output.stdout)
    };
    let missing = run(&[("PV_FORECAST_ARRAYS", "5/30/180")]);
    assert!(
        missing.contains("HOME_LATITUDE and HOME_LONGITUDE are not set"),
        "{missing}"
    );
    let bad = run(&[
        ("HOME_LATITUDE", "52"),
        ("HOME_LONGITUDE", "7.6"),
        ("PV_FORECAST_ARRAYS", "5/30"),
    ]);
    assert!(
        bad.contains("PV_FORECAST_ARRAYS") && bad.contains("kWp/tilt/azimuth"),
        "{bad}"
    );
}
