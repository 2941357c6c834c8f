//! The dashboard process for the tests and the bench: on a free loopback port, against
//! the given broker, signed-in-able with `password`.

#![allow(dead_code)] // each test file uses its own part

use homelab::mqtt::QoS;
use homelab::testkit::{free_port, Broker, Probe, ServiceProcess};
use serde_json::json;
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

pub fn forecast() -> serde_json::Value {
    let hours = |day: &str| {
        (0..24)
            .map(|h: i32| {
                let kwh = if (6..20).contains(&h) {
                    f64::from(7 - (h - 13).abs()) * 0.5
                } else {
                    0.0
                };
                json!({"start": format!("{day}T{h:02}:00:00Z"), "kwh": kwh})
            })
            .collect::<Vec<_>>()
    };
    json!({"generated_at": "2026-11-30T06:00:00Z", "today_date": "2026-11-30",
        "today": hours("2026-11-30"), "tomorrow": hours("2026-12-01"),
        "today_kwh": 24.5, "today_remaining_kwh": 12.0, "tomorrow_kwh": 24.5,
        "model": "physical", "hold_out_error": null, "stale": false,
        // Measured until noon: a cloudier morning than forecast.
        "today_actual": (0..12).map(|h: i32| json!({"start": format!("2026-11-30T{h:02}:00:00Z"),
            "kwh": if h >= 6 { f64::from(h - 5) * 0.3 } else { 0.0 }})).collect::<Vec<_>>(),
        "pv_now_w": 6500.0})
}

/// What the services of a house publish (retained), as the wire carries it: the
/// producers' tests parse these same shapes with the shared types.
pub async fn publish_a_house(probe: &Probe) {
    for service in ["pv-forecast", "smart-ev-charging", "ev-forecast"] {
        let beat = json!({"status": "online", "service": service, "version": "0.1.0", "interval_seconds": 60, "memory_mb": 6.5});
        probe
            .publish(
                &format!("homelab/{service}/heartbeat"),
                beat.to_string(),
                QoS::AtLeastOnce,
                true,
            )
            .await;
    }
    probe
        .publish(
            "homelab/pv-forecast/updated",
            forecast().to_string(),
            QoS::AtLeastOnce,
            true,
        )
        .await;
    probe
        .publish(
            "homelab/smart-ev-charging/entity/mode/state",
            "pv",
            QoS::AtLeastOnce,
            true,
        )
        .await;
    // No simulator: the house now comes from the services' own meters.
    let charging = json!({"mode": "pv", "surplus_w": 1900.0, "target_current_a": 6.0, "phases": 1.0,
        "reason": "pv surplus", "demand_kwh": null, "shortfall_kwh": null,
        "meters": {"grid_export_w": 1200.0, "battery_charge_w": 800.0, "battery_soc": 64.0, "ev_power_w": 4100.0}});
    probe
        .publish(
            "homelab/smart-ev-charging/status",
            charging.to_string(),
            QoS::AtLeastOnce,
            true,
        )
        .await;
    let status = json!({"node": "main", "layers": {}, "services": {}, "containers": [], "issues": [],
        "pending_actions": [{"id": "restart-homelab-ev-forecast-1-20261130T120000Z", "kind": "container_restart",
            "target": "homelab-ev-forecast-1", "reason": "container homelab-ev-forecast-1 is exited", "created_at": "2026-11-30T12:00:00Z"}],
        "alerts_waiting": 0});
    probe
        .publish(
            "homelab/health-monitor/status",
            status.to_string(),
            QoS::AtLeastOnce,
            true,
        )
        .await;
    // ev-forecast's plan, with a trip beyond one charge and a place found nowhere.
    let plan = json!({"energy_needed_kwh": 42.5, "deadline": "2026-12-01T06:30:00Z", "urgency": "high",
        "trips": [
            {"summary": "Messe München", "destination": "Messe München", "start": "2026-12-01T06:30:00Z",
             "distance_km": 590.0, "distance_source": "geocoded", "energy_kwh": 276.1,
             "fits_one_charge": false, "shortfall_kwh": 221.1},
            {"summary": "Mystery place", "destination": "Atlantis", "start": "2026-12-01T15:00:00Z",
             "distance_km": 100.0, "distance_source": "assumed", "energy_kwh": 46.8,
             "fits_one_charge": true, "shortfall_kwh": 0.0}],
        "ev_soc": 30.0, "shortfall_kwh": 267.9,
        "warning": "Messe München + Mystery place from Tue 01 Dec 06:30 UTC needs 328 kWh with the reserve, the battery holds 60: charge on the way (268 kWh short)"});
    probe
        .publish(
            "homelab/ev-forecast/plan",
            plan.to_string(),
            QoS::AtLeastOnce,
            true,
        )
        .await;
}
