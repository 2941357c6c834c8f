//! ev-forecast as a user runs it: the real binary and the real mosquitto. The
//! calendar (iCal URL) and Nominatim are loopback servers; Nominatim replays the
//! saved answer in tests/fixtures. Home Assistant is not needed (no SoC entity set).

mod common;

use axum::extract::{Query, State};
use axum::routing::get;
use homelab::testkit::{Broker, Probe, ServiceProcess};
use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Default)]
struct Fakes {
    calendar: Mutex<String>,
    geocoded: Mutex<Vec<String>>,
    calendar_requests: AtomicUsize,
}

async fn calendar(State(fakes): State<Arc<Fakes>>) -> String {
    fakes.calendar_requests.fetch_add(1, Ordering::SeqCst);
    fakes.calendar.lock().unwrap().clone()
}

async fn search(
    State(fakes): State<Arc<Fakes>>,
    Query(query): Query<HashMap<String, String>>,
) -> String {
    let q = query.get("q").cloned().unwrap_or_default();
    fakes.geocoded.lock().unwrap().push(q.clone());
    if q == "Hamburg" {
        include_str!("fixtures/nominatim-hamburg.json").to_string()
    } else {
        "[]".to_string()
    }
}

fn stamp(hours_from_now: i64) -> String {
    (chrono::Utc::now() + chrono::Duration::hours(hours_from_now))
        .format("%Y%m%dT%H%M00Z")
        .to_string()
}

fn calendar_text() -> String {
    [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "BEGIN:VEVENT",
        "UID:far",
        &format!("DTSTART:{}", stamp(5)),
        "SUMMARY:Weekend trip",
        "LOCATION:Hamburg",
        "END:VEVENT",
        "BEGIN:VEVENT",
        "UID:office",
        &format!("DTSTART:{}", stamp(8)),
        "SUMMARY:Office",
        "LOCATION:ACME Office\\, Dortmund",
        "END:VEVENT",
        "BEGIN:VEVENT",
        "UID:nowhere",
        &format!("DTSTART:{}", stamp(9)),
        "SUMMARY:Mystery place",
        "LOCATION:Atlantis",
        "END:VEVENT",
        "BEGIN:VEVENT",
        "UID:broken",
        "DTSTART:tomorrow-ish",
        "SUMMARY:Typed by hand",
        "END:VEVENT",
        "END:VCALENDAR",
    ]
    .join("\r\n")
}

const PLAN: &str = "homelab/ev-forecast/plan";
const ALERT: &str = "homelab/ev-forecast/alert";
const CLARIFICATION: &str = "homelab/ev-forecast/clarification";

/// The calendar and Nominatim on one loopback port.
async fn serve_fakes(fakes: &Arc<Fakes>) -> u16 {
    let app = axum::Router::new()
        .route("/family.ics", get(calendar))
        .route("/search", get(search))
        .with_state(fakes.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    port
}

/// ev-forecast with the fakes at `port`, home in Münster.
fn ev_forecast(broker: u16, port: u16, data: &std::path::Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ev-forecast"));
    command
        .current_dir(data)
        .env_clear()
        .env("MQTT_HOST", "127.0.0.1")
        .env("MQTT_PORT", broker.to_string())
        .env("DATA_DIR", data)
        .env("HOME_LATITUDE", "51.9625")
        .env("HOME_LONGITUDE", "7.6256")
        .env(
            "EV_FORECAST_ICAL_URLS",
            format!("http://127.0.0.1:{port}/family.ics"),
        )
        .env(
            "EV_FORECAST_NOMINATIM_URL",
            format!("http://127.0.0.1:{port}"),
        )
        .env("EV_FORECAST_DISTANCES", "ACME Office=40")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    command
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishes_a_plan_from_the_calendar_and_asks_nominatim_once_per_place() {
    let broker = Broker::start();
    let fakes = Arc::new(Fakes::default());
    *fakes.calendar.lock().unwrap() = calendar_text();
    let port = serve_fakes(&fakes).await;
    let data = tempfile::tempdir().unwrap();
    let mut probe = Probe::connect(broker.port(), &[PLAN, ALERT]).await;
    let _service = ServiceProcess::spawn(
        ev_forecast(broker.port(), port, data.path()).env("EV_FORECAST_BATTERY_KWH", "77"),
    );

    let plan = probe
        .wait_for(PLAN, Duration::from_secs(30), |_| true)
        .await
        .expect("a plan is published");
    // What smart-ev-charging reads it as (the shared type), from the wire.
    let typed: homelab::messages::ev_forecast::Plan = serde_json::from_value(plan.clone())
        .unwrap_or_else(|error| panic!("the consumer cannot read the plan ({error}): {plan}"));
    assert_eq!(typed.trips.len(), 3);
    assert_eq!(Some(typed.trips[0].start), typed.deadline);
    let trips = plan["trips"].as_array().unwrap();
    assert_eq!(trips.len(), 3, "the malformed event is skipped: {plan}");
    assert_eq!(trips[0]["summary"], "Weekend trip");
    assert_eq!(trips[0]["distance_source"], "geocoded");
    let hamburg_km = trips[0]["distance_km"].as_f64().unwrap();
    assert!(
        (290.0..330.0).contains(&hamburg_km),
        "238 km × 1.3 road factor: {hamburg_km}"
    );
    assert_eq!(trips[1]["distance_source"], "table");
    assert_eq!(trips[1]["distance_km"], 40.0);
    assert_eq!(
        trips[2]["distance_source"], "assumed",
        "a place found nowhere is never 0 km"
    );
    assert_eq!(trips[2]["distance_km"], 100.0);
    assert_eq!(
        trips[0]["fits_one_charge"], false,
        "Hamburg and back: {plan}"
    );
    assert_eq!(trips[1]["fits_one_charge"], true);
    assert_eq!(
        plan["deadline"], trips[0]["start"],
        "the first departure is the deadline"
    );
    // Hamburg and back alone is above 100 kWh: the plan asks for a full battery.
    assert_eq!(plan["energy_needed_kwh"], 77.0);
    assert_eq!(
        plan["urgency"], "high",
        "77 kWh at 11 kW take 7 h; the trip leaves in 5 h"
    );
    // More than one charge: said in the plan, as an HA sensor, and once as an alert.
    let shortfall = plan["shortfall_kwh"].as_f64().unwrap();
    assert!(
        shortfall > 30.0,
        "Hamburg and back + reserve − 77 kWh: {plan}"
    );
    let warning = plan["warning"].as_str().unwrap();
    assert!(
        warning.starts_with("Weekend trip + Office + Mystery place from ")
            && warning.contains("the battery holds 77: charge on the way"),
        "{warning}"
    );
    let alert = probe
        .wait_for(ALERT, Duration::from_secs(10), |_| true)
        .await
        .expect("the shortfall is alerted");
    assert_eq!(alert["text"], warning);
    assert_eq!(alert["shortfall_kwh"], shortfall);
    assert!(plan["trace_id"].as_str().is_some_and(|t| !t.is_empty()));
    assert!(data.path().join("geocode-cache.json").exists());

    // A refresh reads the calendar again; known places are not asked again.
    let asked = fakes.geocoded.lock().unwrap().clone();
    assert_eq!(
        asked,
        vec!["Hamburg", "Atlantis"],
        "the table's place is never geocoded"
    );
    let before = fakes.calendar_requests.load(Ordering::SeqCst);
    common::refresh(&probe).await;
    probe
        .wait_for(PLAN, Duration::from_secs(20), |_| true)
        .await
        .expect("a second plan");
    assert!(fakes.calendar_requests.load(Ordering::SeqCst) > before);
    let repeated = probe
        .drain(Duration::from_secs(1))
        .await
        .into_iter()
        .filter(|message| message.topic == ALERT)
        .count();
    assert_eq!(
        repeated, 0,
        "the same warning is not alerted again at each refresh"
    );
    assert_eq!(
        fakes.geocoded.lock().unwrap().len(),
        2,
        "cached, including the place that was not found"
    );

    // The calendar is emptied: the next plan needs nothing.
    *fakes.calendar.lock().unwrap() = "BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n".into();
    common::refresh(&probe).await;
    let empty = probe
        .wait_for(PLAN, Duration::from_secs(20), |p| {
            p["trips"].as_array().is_some_and(Vec::is_empty)
        })
        .await
        .expect("an empty plan");
    assert_eq!(empty["energy_needed_kwh"], 0.0);
    assert_eq!(empty["urgency"], "none");
}

/// Atlantis is found nowhere: it counts at the assumed 100 km (never 0), the question
/// goes out once, and a person's answer (a confirmed fact from the orchestrator, or
/// HA's text box) replaces the assumption, also after a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_place_is_assumed_far_asked_about_once_and_answered() {
    use homelab::messages::orchestrator::{FactKind, KnowledgeUpdate, KNOWLEDGE_UPDATE_TOPIC};
    let broker = Broker::start();
    let fakes = Arc::new(Fakes::default());
    *fakes.calendar.lock().unwrap() = [
        "BEGIN:VCALENDAR",
        "BEGIN:VEVENT",
        "UID:nowhere",
        &format!("DTSTART:{}", stamp(30)),
        "SUMMARY:Mystery place",
        "LOCATION:Atlantis",
        "END:VEVENT",
        "END:VCALENDAR",
    ]
    .join("\r\n");
    let port = serve_fakes(&fakes).await;
    let data = tempfile::tempdir().unwrap();
    let mut probe = Probe::connect(
        broker.port(),
        &[
            PLAN,
            CLARIFICATION,
            "homelab/ev-forecast/entity/clarification/state",
        ],
    )
    .await;
    let service = ServiceProcess::spawn(&mut ev_forecast(broker.port(), port, data.path()));

    let plan = probe
        .wait_for(PLAN, Duration::from_secs(30), |_| true)
        .await
        .expect("a plan");
    let trip = &plan["trips"][0];
    assert_eq!(
        (
            trip["distance_source"].as_str(),
            trip["distance_km"].as_f64()
        ),
        (Some("assumed"), Some(100.0))
    );
    assert!(
        plan["energy_needed_kwh"].as_f64().unwrap() > 40.0,
        "2 × 100 km, not 0 kWh: {plan}"
    );
    // The question goes out on MQTT (for the orchestrator) and as an HA sensor.
    let mut question = None;
    let mut shown = None;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while question.is_none() || shown.is_none() {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let message = probe.next(left).await.expect("a question and its HA state");
        match message.topic.as_str() {
            CLARIFICATION => question = Some(message.json()),
            "homelab/ev-forecast/entity/clarification/state" => {
                shown = Some(String::from_utf8(message.payload.to_vec()).unwrap())
            }
            _ => {}
        }
    }
    let question: homelab::messages::ev_forecast::Clarification =
        serde_json::from_value(question.unwrap()).unwrap();
    assert_eq!(
        (question.place.as_str(), question.assumed_km),
        ("Atlantis", 100.0)
    );
    assert!(
        question
            .question
            .starts_with("How far is \"Atlantis\" one way (Mystery place, "),
        "{}",
        question.question
    );
    assert_eq!(
        shown.as_deref(),
        Some(question.question.as_str()),
        "HA shows it"
    );

    // A refresh asks nothing new: once a day at most.
    common::refresh(&probe).await;
    probe
        .wait_for(PLAN, Duration::from_secs(20), |_| true)
        .await
        .expect("a second plan");
    let again = probe.drain(Duration::from_secs(1)).await;
    assert!(
        again.iter().all(|m| m.topic != CLARIFICATION),
        "asked once, not at every refresh"
    );

    // A guess is not an answer; a person's confirmed word is.
    let fact = |confirmed: bool, km: f64| KnowledgeUpdate {
        kind: FactKind::Destination,
        subject: "Atlantis".into(),
        statement: format!("Atlantis is {km} km one way"),
        distance_km: Some(km),
        confidence: if confirmed { 1.0 } else { 0.7 },
        confirmed,
    };
    for fact in [fact(false, 5.0), fact(true, 80.0)] {
        probe
            .publish_json(KNOWLEDGE_UPDATE_TOPIC, &serde_json::to_value(fact).unwrap())
            .await;
    }
    let answered = probe
        .wait_for(PLAN, Duration::from_secs(20), |p| {
            p["trips"][0]["distance_source"] == "confirmed"
        })
        .await
        .expect("the answer replaces the assumption");
    assert_eq!(answered["trips"][0]["distance_km"], 80.0);
    assert!(data.path().join("places.json").exists());

    // Typed into HA's text box: place=km.
    probe
        .publish(
            "homelab/ev-forecast/entity/place_distance/set",
            "Atlantis = 120 km",
            homelab::QoS::AtLeastOnce,
            false,
        )
        .await;
    probe
        .wait_for(PLAN, Duration::from_secs(20), |p| {
            p["trips"][0]["distance_km"] == 120.0
        })
        .await
        .expect("HA's answer is used");
    drop(service);

    // The answer outlives a restart; the question is not asked again.
    let mut probe = Probe::connect(broker.port(), &[PLAN, CLARIFICATION]).await;
    let _service = ServiceProcess::spawn(&mut ev_forecast(broker.port(), port, data.path()));
    let plan = probe
        .wait_for(PLAN, Duration::from_secs(30), |p| {
            p["trips"][0]["distance_source"] == "confirmed"
        })
        .await
        .expect("still answered after a restart");
    assert_eq!(plan["trips"][0]["distance_km"], 120.0);
    assert!(probe
        .drain(Duration::from_secs(1))
        .await
        .iter()
        .all(|m| m.topic != CLARIFICATION));
}

/// `diagnose --step calendar` parses: a broken event is named by UID and title and a
/// place found nowhere is named, each a WARN, not a PASS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diagnose_parses_the_calendar_and_names_what_it_cannot_use() {
    let fakes = Arc::new(Fakes::default());
    *fakes.calendar.lock().unwrap() = calendar_text();
    let port = serve_fakes(&fakes).await;
    let data = tempfile::tempdir().unwrap();
    let output = tokio::task::spawn_blocking(move || {
        let output = ev_forecast(9, port, data.path())
            .args(["diagnose", "--step", "calendar", "--json"])
            .stdout(Stdio::piped())
            .output()
            .unwrap();
        drop(data);
        output
    })
    .await
    .unwrap();
    let step = common::diagnose_step(&output.stdout, "calendar");
    assert_eq!(step["status"], "warn", "{step}");
    let detail = step["detail"].as_str().unwrap();
    for expected in [
        "1 calendar(s), 3 event(s) in the next 48 h",
        "(UID broken, \"Typed by hand\") skipped",
        "counted as 100 km until someone answers: \"Atlantis\" (Mystery place): not found",
    ] {
        assert!(detail.contains(expected), "{expected:?} in {detail}");
    }
    assert!(
        !detail.contains("Hamburg"),
        "a place Nominatim finds is fine: {detail}"
    );
}

/// Home Assistant is asked only when the configuration needs it (the car's SoC).
#[test]
fn diagnose_checks_home_assistant_only_when_the_soc_comes_from_it() {
    let broker = Broker::start();
    let data = tempfile::tempdir().unwrap();
    let run = |vars: &[(&str, &str)]| {
        let output = Command::new(env!("CARGO_BIN_EXE_ev-forecast"))
            .current_dir(data.path())
            .env_clear()
            .env("MQTT_HOST", "127.0.0.1")
            .env("MQTT_PORT", broker.port().to_string())
            .env("DATA_DIR", data.path())
            .env("HOME_LATITUDE", "52")
            .env("HOME_LONGITUDE", "7.6")
            .envs(vars.iter().copied())
            .args(["diagnose", "--json"])
            .output()
            .unwrap();
        let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        let steps: Vec<String> = report["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                format!(
                    "{}={}",
                    s["name"].as_str().unwrap(),
                    s["status"].as_str().unwrap()
                )
            })
            .collect();
        (output.status.code(), steps)
    };
    let (code, steps) = run(&[]);
    assert_eq!(
        (code, steps),
        (
            Some(0),
            vec![
                "config=pass".to_string(),
                "mqtt=pass".into(),
                "calendar=warn".into()
            ]
        ),
        "no SoC entity, no HA_URL: HA is not needed and not asked"
    );
    let (code, steps) = run(&[
        ("EV_FORECAST_SOC_ENTITY", "sensor.car_soc"),
        ("HA_URL", "http://127.0.0.1:9"),
        ("HA_TOKEN", "token"),
    ]);
    assert_eq!(code, Some(1), "{steps:?}");
    assert!(
        steps.contains(&"ha_api=fail".to_string())
            && steps.contains(&"ha_websocket=fail".to_string()),
        "{steps:?}"
    );
}

#[test]
fn diagnose_warns_without_a_calendar_and_bad_settings_are_named() {
    let data = tempfile::tempdir().unwrap();
    let run = |args: &[&str], vars: &[(&str, &str)]| {
        Command::new(env!("CARGO_BIN_EXE_ev-forecast"))
            .current_dir(data.path())
            .env_clear()
            .env("DATA_DIR", data.path())
            .env("HOME_LATITUDE", "52")
            .env("HOME_LONGITUDE", "7.6")
            .envs(vars.iter().copied())
            .args(args)
            .output()
            .unwrap()
    };
    let diagnose = run(&["diagnose", "--step", "calendar"], &[]);
    let text = String::from_utf8_lossy(&diagnose.stdout);
    assert!(
        text.contains("calendar")
            && text.contains("WARN")
            && text.contains("EV_FORECAST_ICAL_URLS and GOOGLE_CALENDAR_IDS are empty"),
        "{text}"
    );
    let bad = run(&["run"], &[("EV_FORECAST_DISTANCES", "Office=far")]);
    assert!(!bad.status.success());
    let error =
        String::from_utf8_lossy(&bad.stderr).into_owned() + &String::from_utf8_lossy(&bad.stdout);
    assert!(
        error.contains("EV_FORECAST_DISTANCES") && error.contains("\"far\" is not a distance"),
        "{error}"
    );
}
