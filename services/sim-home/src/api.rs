//! The parts of the Home Assistant API our services use, served by the simulator:
//! REST (`/api/`, `/api/config`, `/api/states`, `/api/services/...`, `/api/history/...`),
//! the WebSocket (`auth`, `subscribe_events` for `state_changed`, `ping`), plus an
//! Open-Meteo-shaped `/v1/forecast` of the simulated sky for pv-forecast.

use crate::physics::{self, HouseConfig, Readings};
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Duration, SecondsFormat, Timelike, Utc};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;

/// Entities the simulator owns: every name says it is simulated.
pub const PV_POWER: &str = "sensor.sim_pv_power";
pub const HOUSE_LOAD: &str = "sensor.sim_house_load";
pub const GRID_POWER: &str = "sensor.sim_grid_power";
pub const BATTERY_POWER: &str = "sensor.sim_battery_power";
pub const BATTERY_SOC: &str = "sensor.sim_battery_soc";
pub const EV_POWER: &str = "sensor.sim_wallbox_power";
pub const EV_SOC: &str = "sensor.sim_ev_soc";
pub const WALLBOX_CURRENT: &str = "number.sim_wallbox_current";
pub const WALLBOX_PHASES: &str = "number.sim_wallbox_phases";
/// On: the home battery does not discharge (as an inverter's discharge lock).
pub const BATTERY_HOLD: &str = "switch.sim_battery_hold";
pub const SAFE_MODE: &str = "input_boolean.homelab_safe_mode";

const HISTORY_LIMIT: usize = 50_000;

pub struct Sim {
    token: String,
    config: HouseConfig,
    states: Mutex<BTreeMap<String, Value>>,
    history: Mutex<Vec<Value>>,
    events: broadcast::Sender<Value>,
    /// Wallbox commands, taken by the physics loop.
    commands: Mutex<Vec<(String, f64)>>,
}

fn now_text() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn attributes(entity_id: &str) -> Value {
    let (name, unit, class) = match entity_id {
        PV_POWER => ("Simulated PV power", "W", "power"),
        HOUSE_LOAD => ("Simulated house load", "W", "power"),
        GRID_POWER => ("Simulated grid power (export +)", "W", "power"),
        BATTERY_POWER => ("Simulated battery power (charge +)", "W", "power"),
        BATTERY_SOC => ("Simulated battery SoC", "%", "battery"),
        EV_POWER => ("Simulated wallbox power", "W", "power"),
        EV_SOC => ("Simulated EV SoC", "%", "battery"),
        WALLBOX_CURRENT => ("Simulated wallbox current", "A", "current"),
        WALLBOX_PHASES => ("Simulated wallbox phases", "", ""),
        BATTERY_HOLD => ("Simulated battery discharge lock", "", ""),
        _ => ("Simulated safe mode", "", ""),
    };
    let mut attributes = json!({"friendly_name": name, "simulated": true});
    if !unit.is_empty() {
        attributes["unit_of_measurement"] = json!(unit);
    }
    if !class.is_empty() {
        attributes["device_class"] = json!(class);
    }
    attributes
}

impl Sim {
    pub fn new(token: &str, config: HouseConfig) -> Arc<Self> {
        let sim = Arc::new(Self {
            token: token.to_string(),
            config,
            states: Mutex::new(BTreeMap::new()),
            history: Mutex::new(Vec::new()),
            events: broadcast::channel(1024).0,
            commands: Mutex::new(Vec::new()),
        });
        sim.set(WALLBOX_CURRENT, "0");
        sim.set(WALLBOX_PHASES, "3");
        sim.set(SAFE_MODE, "off");
        sim.set(BATTERY_HOLD, "off");
        sim
    }

    /// Sets a state; a changed value is recorded and sent as a `state_changed` event.
    pub fn set(&self, entity_id: &str, state: &str) {
        let now = now_text();
        let mut states = self.states.lock().expect("poisoned");
        let old = states.get(entity_id).cloned();
        let changed = old.as_ref().is_none_or(|o| o["state"] != state);
        let last_changed = match (&old, changed) {
            (Some(old), false) => old["last_changed"].clone(),
            _ => json!(now),
        };
        let new = json!({
            "entity_id": entity_id,
            "state": state,
            "attributes": attributes(entity_id),
            "last_changed": last_changed,
            "last_updated": last_changed,
            "last_reported": now,
            "context": {"id": uuid_like(), "parent_id": null, "user_id": null},
        });
        states.insert(entity_id.to_string(), new.clone());
        drop(states);
        if changed {
            let mut history = self.history.lock().expect("poisoned");
            if history.len() >= HISTORY_LIMIT {
                history.drain(..HISTORY_LIMIT / 10);
            }
            history.push(new.clone());
            let event = json!({
                "event_type": "state_changed",
                "data": {"entity_id": entity_id, "old_state": old, "new_state": new},
                "origin": "LOCAL",
                "time_fired": now,
            });
            let _ = self.events.send(event);
        }
    }

    /// Publishes the physics' readings as entity states.
    pub fn publish_readings(&self, readings: &Readings) {
        for (entity, value, decimals) in [
            (PV_POWER, readings.pv_w, 0),
            (HOUSE_LOAD, readings.load_w, 0),
            (GRID_POWER, readings.grid_w, 0),
            (BATTERY_POWER, readings.battery_w, 0),
            (BATTERY_SOC, readings.battery_soc, 1),
            (EV_POWER, readings.ev_w, 0),
            (EV_SOC, readings.ev_soc, 1),
        ] {
            self.set(entity, &format!("{value:.decimals$}"));
        }
    }

    /// Wallbox commands since the last call, in order.
    pub fn take_commands(&self) -> Vec<(String, f64)> {
        std::mem::take(&mut *self.commands.lock().expect("poisoned"))
    }

    fn authorised(&self, headers: &HeaderMap) -> bool {
        headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|token| !self.token.is_empty() && token == self.token)
    }
}

fn uuid_like() -> String {
    format!("{:032x}", rand_u128())
}

fn rand_u128() -> u128 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(Utc::now().timestamp_nanos_opt().unwrap_or_default() as u128);
    u128::from(hasher.finish()) << 64 | u128::from(hasher.finish().rotate_left(17))
}

fn unauthorised() -> Response {
    (StatusCode::UNAUTHORIZED, "401: Unauthorized").into_response()
}

async fn api_root(State(sim): State<Arc<Sim>>, headers: HeaderMap) -> Response {
    if !sim.authorised(&headers) {
        return unauthorised();
    }
    Json(json!({"message": "API running."})).into_response()
}

async fn config(State(sim): State<Arc<Sim>>, headers: HeaderMap) -> Response {
    if !sim.authorised(&headers) {
        return unauthorised();
    }
    Json(json!({
        "location_name": "Simulated home (sim-home)",
        "latitude": sim.config.latitude,
        "longitude": sim.config.longitude,
        "version": "sim-home",
        "unit_system": {"power": "W", "temperature": "°C"},
        "state": "RUNNING",
    }))
    .into_response()
}

async fn states(State(sim): State<Arc<Sim>>, headers: HeaderMap) -> Response {
    if !sim.authorised(&headers) {
        return unauthorised();
    }
    let states: Vec<Value> = sim
        .states
        .lock()
        .expect("poisoned")
        .values()
        .cloned()
        .collect();
    Json(states).into_response()
}

async fn state(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Path(entity_id): Path<String>,
) -> Response {
    if !sim.authorised(&headers) {
        return unauthorised();
    }
    match sim.states.lock().expect("poisoned").get(&entity_id) {
        Some(state) => Json(state.clone()).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            Json(json!({"message": "Entity not found."})),
        )
            .into_response(),
    }
}

async fn call_service(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Path((domain, service)): Path<(String, String)>,
    body: Option<Json<Value>>,
) -> Response {
    if !sim.authorised(&headers) {
        return unauthorised();
    }
    let data = body.map(|Json(v)| v).unwrap_or(Value::Null);
    let entity_id = data["entity_id"].as_str().unwrap_or_default().to_string();
    let result = match (domain.as_str(), service.as_str(), entity_id.as_str()) {
        ("number" | "input_number", "set_value", WALLBOX_CURRENT | WALLBOX_PHASES) => {
            let value = data["value"]
                .as_f64()
                .or_else(|| data["value"].as_str().and_then(|s| s.parse().ok()));
            match value {
                Some(value) if entity_id == WALLBOX_CURRENT && (0.0..=32.0).contains(&value) => {
                    Ok(value)
                }
                Some(value) if entity_id == WALLBOX_PHASES && (value == 1.0 || value == 3.0) => {
                    Ok(value)
                }
                _ => Err(format!(
                    "value {} is out of range for {entity_id}",
                    data["value"]
                )),
            }
        }
        ("input_boolean", "turn_on" | "turn_off", SAFE_MODE)
        | ("switch", "turn_on" | "turn_off", BATTERY_HOLD) => {
            Ok(if service == "turn_on" { 1.0 } else { 0.0 })
        }
        _ => Err(format!(
            "sim-home has no service {domain}.{service} for {entity_id:?}"
        )),
    };
    match result {
        Ok(value) => {
            if entity_id == SAFE_MODE || entity_id == BATTERY_HOLD {
                sim.set(&entity_id, if value == 1.0 { "on" } else { "off" });
            }
            if entity_id != SAFE_MODE {
                sim.set(&entity_id, &format!("{value}"));
                sim.commands
                    .lock()
                    .expect("poisoned")
                    .push((entity_id.clone(), value));
            }
            let changed = sim
                .states
                .lock()
                .expect("poisoned")
                .get(&entity_id)
                .cloned();
            Json(json!([changed])).into_response()
        }
        Err(message) => {
            (StatusCode::BAD_REQUEST, Json(json!({"message": message}))).into_response()
        }
    }
}

async fn history(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Path(start): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    if !sim.authorised(&headers) {
        return unauthorised();
    }
    let Ok(start) = DateTime::parse_from_rfc3339(&start).map(|t| t.with_timezone(&Utc)) else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"message": "Invalid datetime"})),
        )
            .into_response();
    };
    let end = query
        .get("end_time")
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map_or(start + Duration::days(1), |t| t.with_timezone(&Utc));
    let wanted: Vec<&str> = query
        .get("filter_entity_id")
        .map_or(vec![], |f| f.split(',').collect());
    let history = sim.history.lock().expect("poisoned");
    let answer: Vec<Vec<Value>> = wanted
        .iter()
        .map(|entity| {
            history
                .iter()
                .filter(|s| s["entity_id"] == *entity)
                .filter(|s| {
                    s["last_changed"]
                        .as_str()
                        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                        .is_some_and(|t| t >= start && t <= end)
                })
                .cloned()
                .collect()
        })
        .filter(|states: &Vec<Value>| !states.is_empty())
        .collect();
    Json(answer).into_response()
}

/// Hourly weather of the simulated sky, shaped like Open-Meteo's answer (UTC, radiation
/// as the mean of the hour before the stamp), for today and tomorrow.
async fn forecast(State(sim): State<Arc<Sim>>) -> Json<Value> {
    let today = Utc::now()
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .unwrap_or_default()
        .and_utc();
    let (mut time, mut ghi, mut temperature, mut cloud) = (vec![], vec![], vec![], vec![]);
    for hour in 0..48 {
        let stamp = today + Duration::hours(hour);
        let middle = stamp - Duration::minutes(30);
        time.push(stamp.format("%Y-%m-%dT%H:%M").to_string());
        ghi.push((physics::irradiance(middle, &sim.config) * 10.0).round() / 10.0);
        let season = middle + Duration::days(sim.config.season_shift_days);
        let height = physics::sun_height(season, sim.config.latitude, sim.config.longitude);
        temperature.push(12.0 + 8.0 * height.max(0.0) + f64::from(stamp.hour() % 3));
        cloud.push((physics::cloud_cover(season, sim.config.cloudiness) * 100.0).round());
    }
    Json(json!({
        "latitude": sim.config.latitude,
        "longitude": sim.config.longitude,
        "utc_offset_seconds": 0,
        "timezone": "GMT",
        "hourly_units": {"time": "iso8601", "shortwave_radiation": "W/m²", "temperature_2m": "°C", "cloud_cover": "%"},
        "hourly": {"time": time, "shortwave_radiation": ghi, "temperature_2m": temperature, "cloud_cover": cloud},
    }))
}

async fn websocket(State(sim): State<Arc<Sim>>, upgrade: WebSocketUpgrade) -> Response {
    upgrade.on_upgrade(move |socket| session(sim, socket))
}

async fn send(socket: &mut WebSocket, value: Value) -> bool {
    socket
        .send(Message::Text(value.to_string().into()))
        .await
        .is_ok()
}

async fn session(sim: Arc<Sim>, mut socket: WebSocket) {
    if !send(
        &mut socket,
        json!({"type": "auth_required", "ha_version": "sim-home"}),
    )
    .await
    {
        return;
    }
    let Some(Ok(Message::Text(auth))) = socket.recv().await else {
        return;
    };
    let auth: Value = serde_json::from_str(&auth).unwrap_or_default();
    if auth["type"] != "auth"
        || auth["access_token"].as_str() != Some(sim.token.as_str())
        || sim.token.is_empty()
    {
        let _ = send(
            &mut socket,
            json!({"type": "auth_invalid", "message": "Invalid access token or password"}),
        )
        .await;
        return;
    }
    if !send(
        &mut socket,
        json!({"type": "auth_ok", "ha_version": "sim-home"}),
    )
    .await
    {
        return;
    }
    let mut events = sim.events.subscribe();
    let mut subscriptions: Vec<u64> = Vec::new();
    loop {
        tokio::select! {
            incoming = socket.recv() => {
                let Some(Ok(message)) = incoming else { return };
                let Message::Text(text) = message else { continue };
                let request: Value = serde_json::from_str(&text).unwrap_or_default();
                let id = request["id"].as_u64().unwrap_or_default();
                let reply = match request["type"].as_str() {
                    Some("ping") => json!({"id": id, "type": "pong"}),
                    Some("subscribe_events") if request["event_type"] == "state_changed" => {
                        subscriptions.push(id);
                        json!({"id": id, "type": "result", "success": true, "result": null})
                    }
                    other => json!({"id": id, "type": "result", "success": false,
                        "error": {"code": "unknown_command", "message": format!("sim-home does not know {other:?}")}}),
                };
                if !send(&mut socket, reply).await {
                    return;
                }
            }
            event = events.recv() => {
                let Ok(event) = event else { continue };
                for id in &subscriptions {
                    if !send(&mut socket, json!({"id": id, "type": "event", "event": event})).await {
                        return;
                    }
                }
            }
        }
    }
}

pub fn router(sim: Arc<Sim>) -> Router {
    Router::new()
        .route("/api/", get(api_root))
        .route("/api/config", get(config))
        .route("/api/states", get(states))
        .route("/api/states/{entity_id}", get(state))
        .route("/api/services/{domain}/{service}", post(call_service))
        .route("/api/history/period/{start}", get(history))
        .route("/api/websocket", get(websocket))
        .route("/v1/forecast", get(forecast))
        .with_state(sim)
}
