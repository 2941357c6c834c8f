//! smart-ev-charging as a user runs it: the real binary, the real Home Assistant core
//! (input_number helpers stand in for the grid meter, the wallbox power and the
//! wallbox current) and the real mosquitto.

use homelab::ha::HomeAssistant;
use homelab::testkit::{free_port, Broker, HomeAssistantCore, Probe, ServiceProcess};
use homelab::QoS;
use homelab::Secret;
use serde_json::json;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

async fn set(ha: &HomeAssistant, entity: &str, value: f64) {
    ha.call_service(
        "input_number",
        "set_value",
        &json!({"entity_id": entity, "value": value}),
    )
    .await
    .unwrap();
}

async fn current(ha: &HomeAssistant) -> f64 {
    ha.read_float("input_number.ev_charge_current", -1.0).await
}

/// Waits until the wallbox current in HA is `expected`; how long it took.
async fn wait_current_within(
    ha: &HomeAssistant,
    expected: f64,
    limit: Duration,
    what: &str,
) -> Duration {
    let start = Instant::now();
    while current(ha).await != expected {
        assert!(
            start.elapsed() < limit,
            "{what}: wallbox current is {}, expected {expected} within {limit:?}",
            current(ha).await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    start.elapsed()
}

async fn wait_current(ha: &HomeAssistant, expected: f64, what: &str) {
    wait_current_within(ha, expected, Duration::from_secs(20), what).await;
}

/// A GET on the service's own HTTP port: (status, body).
async fn http_get(http_port: u16, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", http_port))
        .await
        .unwrap();
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let body = response
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or_default()
        .to_string();
    (status, body)
}

/// `homelab_ha_requests_total` from the service's own `/metrics`.
async fn ha_requests(http_port: u16) -> f64 {
    let (_, body) = http_get(http_port, "/metrics").await;
    body.lines()
        .find(|line| line.starts_with("homelab_ha_requests_total"))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("no homelab_ha_requests_total in {body}"))
}

/// The charging mode select in HA, as a person picks it.
async fn choose_mode(ha: &HomeAssistant, mode: &str) {
    ha.call_service(
        "select",
        "select_option",
        &json!({"entity_id": "select.homelab_smart_ev_charging_mode", "option": mode}),
    )
    .await
    .unwrap();
}

/// The goal: any input → wallbox command within 1 s (measured from the
/// moment HA accepted the change to the moment HA shows the new current).
const REACTION: Duration = Duration::from_secs(1);

async fn switch(ha: &HomeAssistant, entity: &str, on: bool) {
    ha.call_service(
        "input_boolean",
        if on { "turn_on" } else { "turn_off" },
        &json!({"entity_id": entity}),
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn charges_from_surplus_stops_without_it_and_respects_safe_mode() {
    let broker = Broker::start();
    let core = HomeAssistantCore::start().await;
    core.connect_mqtt(broker.port()).await;
    let ha = HomeAssistant::new(&core.url(), Secret::new(core.token()));
    set(&ha, "input_number.ev_charge_current", 0.0).await;

    let data = tempfile::tempdir().unwrap();
    let http_port = free_port();
    let child = ServiceProcess::spawn(
        Command::new(env!("CARGO_BIN_EXE_smart-ev-charging"))
            .current_dir(data.path())
            .env_clear()
            .env("MQTT_HOST", "127.0.0.1")
            .env("MQTT_PORT", broker.port().to_string())
            .env("DATA_DIR", data.path())
            .env("HTTP_PORT", http_port.to_string())
            .env("HEARTBEAT_INTERVAL_SECONDS", "1")
            .env("HA_URL", core.url())
            .env("HA_TOKEN", core.token())
            .env("SMART_EV_GRID_POWER_ENTITY", "input_number.grid_power")
            .env("SMART_EV_EV_POWER_ENTITY", "input_number.wallbox_power")
            .env(
                "SMART_EV_BATTERY_POWER_ENTITY",
                "input_number.battery_power",
            )
            .env("SMART_EV_BATTERY_SOC_ENTITY", "input_number.battery_soc")
            .env("SMART_EV_BATTERY_HOLD_ENTITY", "input_boolean.battery_hold")
            .env(
                "SMART_EV_WALLBOX_CURRENT_ENTITY",
                "input_number.ev_charge_current",
            )
            .env("SMART_EV_ENABLE_DELAY_SECONDS", "0")
            .env("SMART_EV_DISABLE_DELAY_SECONDS", "0")
            .env("SMART_EV_MIN_COMMAND_INTERVAL_SECONDS", "0")
            // The backstop is slow: what happens within a second is event-driven.
            .env("SMART_EV_CYCLE_SECONDS", "60")
            .env("SMART_EV_RETRY_SECONDS", "1")
            .env("SMART_EV_METER_FOLLOW_SECONDS", "2")
            .env(
                "SMART_EV_PHASE_SWITCH_ENTITY",
                "input_number.wallbox_phases",
            )
            .env("SMART_EV_PHASE_SWITCH_DELAY_SECONDS", "0")
            .env("SMART_EV_PHASE_GRACE_SECONDS", "0")
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );

    // 6 kW export: (6000 - 100 reserve) / 690 W per A = 8.55 → 8 A.
    set(&ha, "input_number.grid_power", 6000.0).await;
    wait_current(&ha, 8.0, "surplus should start charging").await;
    // The car draws it; export drops by as much: the current stays.
    set(&ha, "input_number.wallbox_power", 5520.0).await;
    set(&ha, "input_number.grid_power", 480.0).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        current(&ha).await,
        8.0,
        "the car's own draw counts as surplus"
    );

    // A meter that reports every second, with the decision unchanged: no REST round
    // trip per event, and each entity state published once per new value.
    let mut states =
        Probe::connect(broker.port(), &["homelab/smart-ev-charging/entity/+/state"]).await;
    let mut status = Probe::connect(broker.port(), &["homelab/smart-ev-charging/status"]).await;
    states.drain(Duration::from_millis(500)).await; // the retained ones
    let requests_before = ha_requests(http_port).await;
    for watts in [480.0, 490.0, 480.0, 470.0, 480.0, 480.0, 490.0, 480.0] {
        set(&ha, "input_number.grid_power", watts).await;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let published = states.drain(Duration::from_millis(500)).await;
    // The status carries the meters as the decision saw them (the dashboard's "now").
    let seen = status
        .wait_for(
            "homelab/smart-ev-charging/status",
            Duration::from_secs(5),
            |s| s["meters"]["grid_export_w"] == 480.0,
        )
        .await
        .expect("a status with the last grid reading");
    assert_eq!(seen["meters"]["ev_power_w"], 5520.0, "{seen}");
    let mut late = Probe::connect(broker.port(), &["homelab/smart-ev-charging/status"]).await;
    let retained = late
        .next(Duration::from_secs(5))
        .await
        .expect("the last status, for a dashboard that starts later");
    assert!(retained.retain);
    assert_eq!(retained.json()["mode"], seen["mode"]);
    let requests = ha_requests(http_port).await - requests_before;
    assert_eq!(
        requests, 0.0,
        "meter events are taken from the event, not fetched again"
    );
    assert!(
        !published
            .iter()
            .any(|m| m.topic.ends_with("/target_current/state")),
        "the target did not change and was not published again"
    );
    for pair in published.windows(2) {
        assert!(
            !(pair[0].topic == pair[1].topic && pair[0].payload == pair[1].payload),
            "{} published twice with the same value",
            pair[0].topic
        );
    }
    assert!(
        published.len() <= 2 * 8,
        "{} state messages for 8 meter changes",
        published.len()
    );
    set(&ha, "input_number.grid_power", 480.0).await;

    // The grid meter freezes: the car's power steps up by 4 kW (someone's other
    // charger app, a ramp) and the grid reading does not move. The current must not
    // climb on the stale export; after the 2 s follow window the grid reading is not
    // believed and pv takes its safe action (the disable delay is 0 here: stop).
    set(&ha, "input_number.wallbox_power", 9660.0).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        current(&ha).await,
        8.0,
        "no raise on a grid value older than the car's change"
    );
    wait_current_within(
        &ha,
        0.0,
        Duration::from_secs(4),
        "a frozen grid meter is a safe stop",
    )
    .await;
    // The service says so: degraded with the reason, in /readyz and the heartbeat.
    let (status, body) = http_get(http_port, "/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("grid meter frozen"), "{body}");
    let mut heartbeats =
        Probe::connect(broker.port(), &["homelab/smart-ev-charging/heartbeat"]).await;
    let beat = heartbeats
        .wait_for(
            "homelab/smart-ev-charging/heartbeat",
            Duration::from_secs(5),
            |beat| beat["status"] == "degraded",
        )
        .await
        .expect("no degraded heartbeat while the grid meter is frozen");
    assert!(beat.to_string().contains("grid meter frozen"), "{beat}");
    // It moves again: believed again, charging resumes by itself.
    set(&ha, "input_number.wallbox_power", 0.0).await;
    set(&ha, "input_number.grid_power", 6000.0).await;
    wait_current_within(&ha, 8.0, REACTION * 3, "recovery when the meter is back").await;
    assert_eq!(http_get(http_port, "/readyz").await.0, 200, "healthy again");

    // Heavy clouds: importing 6 kW while the car draws 5.5 kW leaves no solar share → stop.
    // (Importing only 3 kW would leave 2.4 kW for the car: enough for one phase.)
    set(&ha, "input_number.wallbox_power", 5520.0).await;
    set(&ha, "input_number.grid_power", -6000.0).await;
    let took = wait_current_within(&ha, 0.0, REACTION, "no surplus should stop charging").await;
    println!("stop after a meter change: {took:?}");

    // Safe mode on: sun comes back, nothing is written.
    let safe_mode = "input_boolean.homelab_safe_mode";
    switch(&ha, safe_mode, true).await;
    set(&ha, "input_number.wallbox_power", 0.0).await;
    set(&ha, "input_number.grid_power", 9000.0).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(current(&ha).await, 0.0, "safe mode must block every write");
    switch(&ha, safe_mode, false).await;
    let took = wait_current_within(
        &ha,
        12.0,
        REACTION,
        "after safe mode the surplus (8900 W → 12 A) is applied at once",
    )
    .await;
    println!("safe mode off → wallbox: {took:?}");

    // Someone turns the wallbox to 16 A by hand: the decision is applied again.
    set(&ha, "input_number.ev_charge_current", 16.0).await;
    wait_current_within(&ha, 12.0, REACTION * 2, "a hand-made change is reconciled").await;

    // Winter sun: 2.5 kW cannot carry 6 A on three phases; one phase at 10 A can.
    set(&ha, "input_number.grid_power", 2500.0).await;
    wait_current(&ha, 10.0, "a small surplus charges on one phase").await;
    assert_eq!(ha.read_float("input_number.wallbox_phases", 0.0).await, 1.0);

    // The mode select in HA (MQTT discovery): fast → 16 A, off → 0.
    let select = "select.homelab_smart_ev_charging_mode";
    let deadline = Instant::now() + Duration::from_secs(20);
    while ha
        .get_state(select)
        .await
        .map(|s| s.state)
        .unwrap_or_default()
        != "pv"
    {
        assert!(
            Instant::now() < deadline,
            "the mode select never appeared in HA"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    choose_mode(&ha, "fast").await;
    let took = wait_current_within(&ha, 16.0, REACTION, "fast charges at the maximum").await;
    println!("mode fast → wallbox: {took:?}");
    choose_mode(&ha, "off").await;
    wait_current_within(&ha, 0.0, REACTION, "off stops").await;

    // min_pv at night: the car's minimum would come out of the home battery; the
    // battery's discharge lock goes on with the charge, and off again for fast.
    set(&ha, "input_number.grid_power", -200.0).await;
    let hold = "input_boolean.battery_hold";
    let held = |ha: HomeAssistant| async move {
        ha.get_state(hold)
            .await
            .map(|s| s.state == "on")
            .unwrap_or(false)
    };
    choose_mode(&ha, "min_pv").await;
    wait_current_within(&ha, 6.0, REACTION, "min_pv charges the minimum").await;
    assert!(
        held(ha.clone()).await,
        "the lock goes on before the car starts on the battery"
    );
    set(&ha, "input_number.wallbox_power", 4140.0).await;
    set(&ha, "input_number.battery_power", 0.0).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        held(ha.clone()).await,
        "the grid gives the car its minimum, not the battery"
    );
    choose_mode(&ha, "fast").await;
    wait_current_within(&ha, 16.0, REACTION, "fast").await;
    let start = Instant::now();
    while held(ha.clone()).await {
        assert!(
            start.elapsed() < REACTION,
            "fast may use the battery: the lock goes off"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    set(&ha, "input_number.wallbox_power", 0.0).await;
    choose_mode(&ha, "off").await;
    wait_current_within(&ha, 0.0, REACTION, "off stops").await;

    // Smart, in the dark: ev-forecast's plan (retained, as ev-forecast publishes it)
    // decides. A far deadline waits for the sun; a near one charges from the grid.
    set(&ha, "input_number.grid_power", -300.0).await;
    let probe = Probe::connect(broker.port(), &[]).await;
    let plan = |energy: f64, hours: i64| {
        json!({
            "energy_needed_kwh": energy,
            "deadline": (chrono::Utc::now() + chrono::Duration::hours(hours)).to_rfc3339(),
            "urgency": "low",
            "trips": [],
        })
        .to_string()
    };
    let plan_topic = "homelab/ev-forecast/plan";
    probe
        .publish(plan_topic, plan(20.0, 12), QoS::AtLeastOnce, true)
        .await;
    choose_mode(&ha, "smart").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(current(&ha).await, 0.0, "12 h left: wait for PV");
    probe
        .publish(plan_topic, plan(20.0, 2), QoS::AtLeastOnce, true)
        .await;
    wait_current(&ha, 16.0, "2 h left for 20 kWh: charge at the maximum").await;

    assert!(child.terminate().status.success());
    let log = core.log();
    assert!(
        !log.contains("non-numeric value"),
        "a numeric sensor got a non-number (the frozen meter published no surplus): {log}"
    );
    let saved = std::fs::read_to_string(data.path().join("state.json")).unwrap();
    assert!(
        saved.contains("\"smart\""),
        "the chosen mode survives a restart: {saved}"
    );
}
