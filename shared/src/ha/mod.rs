//! Home Assistant: REST with a long-lived token, and `state_changed` over the WebSocket.
//!
//! REST goes through reqwest directly (as STYLE.md advises); the WebSocket uses
//! tokio-tungstenite behind our own reconnecting task. We evaluated hass-rs (v0.5):
//! it has no reconnect and no timeouts and takes `&mut self`, so a dropped TCP
//! connection can leave a call waiting forever — not what runs a house.
//! Every call has a timeout; errors say whether a retry can help.

mod websocket;

pub use websocket::{StateChange, Subscription};

use crate::request_metrics::RequestMetrics;
use crate::retry::{retry, RetryPolicy};
use crate::secret::Secret;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Every Home Assistant call fails with the shared transport error.
pub type HaError = crate::transport::TransportError;

const PEER: &str = "home assistant";

fn permanent(operation: &str, message: impl Into<String>) -> HaError {
    HaError::permanent(PEER, operation, message)
}

fn from_reqwest(operation: &str, error: &reqwest::Error) -> HaError {
    HaError::from_reqwest(
        PEER,
        operation,
        error,
        REQUEST_TIMEOUT,
        "is Home Assistant running, is HA_URL right?",
    )
}

fn from_status(operation: &str, status: u16, body: &str) -> HaError {
    let hint = match status {
        401 | 403 => " (HA_TOKEN is wrong or expired)",
        404 => " (no such entity or service)",
        _ => "",
    };
    HaError::from_status(PEER, operation, status, body, hint)
}

/// An entity's state as Home Assistant reports it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EntityState {
    pub entity_id: String,
    pub state: String,
    #[serde(default)]
    pub attributes: Map<String, Value>,
    #[serde(default)]
    pub last_changed: Option<String>,
    #[serde(default)]
    pub last_updated: Option<String>,
    /// When the sensor last reported, changed or not (HA 2024.3+); staleness checks use it.
    #[serde(default)]
    pub last_reported: Option<String>,
}

impl EntityState {
    /// Seconds since the entity last reported (or, on older HA, last updated).
    pub fn age_seconds(&self) -> Option<f64> {
        let stamp = self
            .last_reported
            .as_deref()
            .or(self.last_updated.as_deref())?;
        let at = chrono::DateTime::parse_from_rfc3339(stamp).ok()?;
        Some(
            (chrono::Utc::now() - at.with_timezone(&chrono::Utc)).num_milliseconds() as f64
                / 1000.0,
        )
    }
}

impl EntityState {
    /// `unit_of_measurement`, e.g. `W` or `kW`.
    pub fn unit(&self) -> Option<&str> {
        self.attributes
            .get("unit_of_measurement")
            .and_then(Value::as_str)
    }

    /// The state as a number with its unit; `None` for unavailable/unknown/non-numeric.
    pub fn reading(&self) -> Option<Reading> {
        let value: f64 = self
            .state
            .trim()
            .parse()
            .ok()
            .filter(|v: &f64| v.is_finite())?;
        Some(Reading {
            value,
            unit: self.unit().map(str::to_string),
        })
    }
}

/// A number with the unit it came with, so that W and kW are never confused.
#[derive(Clone, Debug, PartialEq)]
pub struct Reading {
    pub value: f64,
    pub unit: Option<String>,
}

impl Reading {
    /// The value in watts for power units (W, kW, MW); `None` for anything else.
    pub fn watts(&self) -> Option<f64> {
        match self.unit.as_deref()? {
            "W" => Some(self.value),
            "kW" => Some(self.value * 1000.0),
            "MW" => Some(self.value * 1_000_000.0),
            _ => None,
        }
    }

    /// Like [`Reading::watts`], but a value without a unit is taken as W (many
    /// template and MQTT sensors have none); other units are still refused.
    pub fn power_watts(&self) -> Option<f64> {
        match self.unit {
            None => Some(self.value),
            Some(_) => self.watts(),
        }
    }
}

/// `domain.object_id`, as HA spells entity ids: anything else never reaches a URL path.
pub fn valid_entity_id(entity_id: &str) -> bool {
    let Some((domain, object)) = entity_id.split_once('.') else {
        return false;
    };
    let ok = |part: &str| {
        !part.is_empty()
            && part
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    };
    ok(domain) && ok(object)
}

fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// The client. Cheap to clone; connections are opened on first use.
#[derive(Clone)]
pub struct HomeAssistant {
    inner: Arc<Inner>,
}

struct Inner {
    base: String,
    token: Secret,
    http: Mutex<Option<reqwest::Client>>,
    retry: RetryPolicy,
    metrics: RequestMetrics,
}

impl std::fmt::Debug for HomeAssistant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HomeAssistant")
            .field("url", &self.inner.base)
            .field("token", &self.inner.token)
            .finish()
    }
}

impl HomeAssistant {
    pub fn new(url: &str, token: Secret) -> Self {
        Self::with_retry(
            url,
            token,
            RetryPolicy {
                max_attempts: 3,
                ..RetryPolicy::default()
            },
        )
    }

    pub fn with_retry(url: &str, token: Secret, retry: RetryPolicy) -> Self {
        Self {
            inner: Arc::new(Inner {
                base: url.trim_end_matches('/').to_string(),
                token,
                http: Mutex::new(None),
                retry,
                metrics: RequestMetrics::default(),
            }),
        }
    }

    pub fn from_settings(settings: &crate::CommonSettings) -> Self {
        Self::new(&settings.ha_url, settings.ha_token.clone())
    }

    /// Like [`HomeAssistant::from_settings`], its calls ended by `shutdown`.
    pub fn from_settings_until(
        settings: &crate::CommonSettings,
        shutdown: tokio_util::sync::CancellationToken,
    ) -> Self {
        Self::with_retry(
            &settings.ha_url,
            settings.ha_token.clone(),
            RetryPolicy {
                max_attempts: 3,
                ..RetryPolicy::default()
            }
            .cancelled_by(shutdown),
        )
    }

    pub fn url(&self) -> &str {
        &self.inner.base
    }

    pub fn metrics(&self) -> &RequestMetrics {
        &self.inner.metrics
    }

    fn http(&self) -> reqwest::Client {
        let mut slot = self.inner.http.lock().expect("poisoned");
        slot.get_or_insert_with(|| {
            reqwest::Client::builder()
                .timeout(REQUEST_TIMEOUT)
                .connect_timeout(Duration::from_secs(5))
                .build()
                .expect("a reqwest client with these options always builds")
        })
        .clone()
    }

    /// Drops the connection pool; the next call opens a new one.
    pub fn close(&self) {
        self.inner.http.lock().expect("poisoned").take();
    }

    async fn request(
        &self,
        operation: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, HaError> {
        if self.inner.token.is_empty() {
            return Err(permanent(operation, "HA_TOKEN is not set"));
        }
        let started = Instant::now();
        let mut request = self
            .http()
            .request(method, format!("{}{path}", self.inner.base))
            .bearer_auth(self.inner.token.expose());
        if let Some(body) = body {
            request = request.json(body);
        }
        let result = async {
            let response = request
                .send()
                .await
                .map_err(|e| from_reqwest(operation, &e))?;
            let status = response.status().as_u16();
            let text = response
                .text()
                .await
                .map_err(|e| from_reqwest(operation, &e))?;
            if !(200..300).contains(&status) {
                return Err(from_status(operation, status, &text));
            }
            if text.trim().is_empty() {
                return Ok(Value::Null);
            }
            serde_json::from_str(&text)
                .map_err(|e| permanent(operation, format!("unreadable answer: {e}")))
        }
        .await;
        self.inner.metrics.record(started, result.is_ok());
        result
    }

    /// GETs are retried on transient errors (they are safe to repeat).
    async fn get(&self, operation: &str, path: &str) -> Result<Value, HaError> {
        retry(
            operation,
            &self.inner.retry,
            || self.request(operation, reqwest::Method::GET, path, None),
            HaError::is_transient,
        )
        .await
    }

    fn decode<T: serde::de::DeserializeOwned>(operation: &str, value: Value) -> Result<T, HaError> {
        serde_json::from_value(value)
            .map_err(|e| permanent(operation, format!("unexpected answer: {e}")))
    }

    /// `GET /api/config`: version, location, units.
    pub async fn config(&self) -> Result<Value, HaError> {
        self.get("ha_config", "/api/config").await
    }

    pub async fn get_state(&self, entity_id: &str) -> Result<EntityState, HaError> {
        if !valid_entity_id(entity_id) {
            return Err(permanent(
                "ha_get_state",
                format!("{entity_id:?} is not an entity id (domain.object_id)"),
            ));
        }
        let value = self
            .get("ha_get_state", &format!("/api/states/{entity_id}"))
            .await?;
        Self::decode("ha_get_state", value)
    }

    pub async fn get_states(&self) -> Result<Vec<EntityState>, HaError> {
        let value = self.get("ha_get_states", "/api/states").await?;
        Self::decode("ha_get_states", value)
    }

    /// The state as a number; `unavailable`, `unknown`, empty, a missing entity, a
    /// non-number and an unreachable HA all give `default`, with one WARN naming the entity.
    pub async fn read_float(&self, entity_id: &str, default: f64) -> f64 {
        match self.read(entity_id).await {
            Ok(reading) => reading.value,
            Err(reason) => {
                tracing::warn!(entity_id, reason = %reason, default, "sensor_unavailable_using_default");
                default
            }
        }
    }

    /// The state as a number with its unit, or why there is none.
    pub async fn read(&self, entity_id: &str) -> Result<Reading, String> {
        match self.get_state(entity_id).await {
            Ok(state) => state
                .reading()
                .ok_or_else(|| format!("state is {:?}", state.state)),
            Err(error) if error.status == Some(404) => Err("no such entity".into()),
            Err(error) => Err(error.to_string()),
        }
    }

    /// `POST /api/services/{domain}/{service}`; returns the states it changed.
    /// Not retried: the caller knows whether repeating this write is safe.
    pub async fn call_service(
        &self,
        domain: &str,
        service: &str,
        data: &Value,
    ) -> Result<Value, HaError> {
        if !valid_name(domain) || !valid_name(service) {
            return Err(permanent(
                "ha_call_service",
                format!("invalid service {domain:?}.{service:?}"),
            ));
        }
        self.request(
            "ha_call_service",
            reqwest::Method::POST,
            &format!("/api/services/{domain}/{service}"),
            Some(data),
        )
        .await
    }

    /// `POST /api/states/{entity_id}`: creates or updates an entity's state (not a device).
    pub async fn set_state(
        &self,
        entity_id: &str,
        state: &str,
        attributes: &Value,
    ) -> Result<EntityState, HaError> {
        if !valid_entity_id(entity_id) {
            return Err(permanent(
                "ha_set_state",
                format!("{entity_id:?} is not an entity id"),
            ));
        }
        let body = serde_json::json!({"state": state, "attributes": attributes});
        let value = self
            .request(
                "ha_set_state",
                reqwest::Method::POST,
                &format!("/api/states/{entity_id}"),
                Some(&body),
            )
            .await?;
        Self::decode("ha_set_state", value)
    }

    /// `POST /api/events/{event_type}`.
    pub async fn fire_event(&self, event_type: &str, data: &Value) -> Result<(), HaError> {
        if !valid_name(event_type) {
            return Err(permanent(
                "ha_fire_event",
                format!("invalid event type {event_type:?}"),
            ));
        }
        self.request(
            "ha_fire_event",
            reqwest::Method::POST,
            &format!("/api/events/{event_type}"),
            Some(data),
        )
        .await?;
        Ok(())
    }

    /// `GET /api/history/period/{start}`: each entity's states between `start` and `end`.
    pub async fn history(
        &self,
        entity_ids: &[&str],
        start: chrono::DateTime<chrono::Utc>,
        end: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<Vec<EntityState>>, HaError> {
        if let Some(bad) = entity_ids.iter().find(|id| !valid_entity_id(id)) {
            return Err(permanent(
                "ha_history",
                format!("{bad:?} is not an entity id"),
            ));
        }
        let format = |time: chrono::DateTime<chrono::Utc>| {
            urlencoding::encode(&time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                .into_owned()
        };
        let path = format!(
            "/api/history/period/{}?end_time={}&filter_entity_id={}&significant_changes_only=0",
            format(start),
            format(end),
            entity_ids.join(",")
        );
        let value = self.get("ha_history", &path).await?;
        Self::decode("ha_history", value)
    }

    /// Safe mode: `on` stops writes. An unreachable HA fails open (false) with a WARN,
    /// as the Python system did, so that an HA outage does not freeze the house.
    pub async fn is_safe_mode(&self, entity_id: &str) -> bool {
        match self.get_state(entity_id).await {
            Ok(state) => state.state == "on",
            Err(error) if error.status == Some(404) => false,
            Err(error) => {
                tracing::warn!(entity_id, error = %error, "safe_mode_unknown_failing_open");
                false
            }
        }
    }

    /// Subscribes to `state_changed` (all entities, or only `entity_ids`), reconnecting
    /// and re-subscribing by itself until `stop`.
    pub fn subscribe_state_changes(
        &self,
        entity_ids: Vec<String>,
        stop: tokio_util::sync::CancellationToken,
    ) -> Subscription {
        websocket::subscribe(&self.inner.base, self.inner.token.clone(), entity_ids, stop)
    }
}

/// Diagnose steps `ha_api` and `ha_websocket`.
pub fn diagnose_steps(settings: &crate::CommonSettings) -> Vec<crate::diagnose::Step> {
    use crate::diagnose::{Check, Step};
    let client = HomeAssistant::from_settings(settings);
    let ws_client = client.clone();
    vec![
        Step::new("ha_api", async move {
            let config = match client.config().await {
                Ok(config) => config,
                Err(error) => return Check::fail(error.to_string()),
            };
            match client.get_states().await {
                Ok(states) => Check::pass(format!(
                    "{}: Home Assistant {}, {} entities",
                    client.url(),
                    config["version"].as_str().unwrap_or("?"),
                    states.len()
                )),
                Err(error) => Check::fail(error.to_string()),
            }
        }),
        Step::new("ha_websocket", async move {
            let stop = tokio_util::sync::CancellationToken::new();
            let mut subscription = ws_client.subscribe_state_changes(Vec::new(), stop.clone());
            let started = Instant::now();
            let subscribed = subscription
                .wait_subscribed(1, Duration::from_secs(10))
                .await;
            stop.cancel();
            match subscribed {
                Ok(()) => Check::pass(format!(
                    "authenticated and subscribed to state_changed in {} ms",
                    started.elapsed().as_millis()
                )),
                Err(reason) => Check::fail(reason),
            }
        }),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entity_ids_are_validated_before_they_reach_a_path() {
        assert!(valid_entity_id("sensor.pv_power"));
        assert!(valid_entity_id("input_number.ev_target_soc2"));
        for bad in [
            "sensor",
            "sensor.",
            ".x",
            "sensor.pv/../../config",
            "Sensor.x",
            "sensor.pv power",
            "a.b.c",
        ] {
            assert!(!valid_entity_id(bad), "{bad}");
        }
    }

    #[test]
    fn readings_keep_their_unit_and_convert_power() {
        let state = |value: &str, unit: Option<&str>| EntityState {
            entity_id: "sensor.x".into(),
            state: value.into(),
            attributes: unit
                .map(|u| {
                    serde_json::json!({"unit_of_measurement": u})
                        .as_object()
                        .unwrap()
                        .clone()
                })
                .unwrap_or_default(),
            last_changed: None,
            last_updated: None,
            last_reported: None,
        };
        assert_eq!(
            state("1.5", Some("kW")).reading().unwrap().watts(),
            Some(1500.0)
        );
        assert_eq!(
            state("300", Some("W")).reading().unwrap().watts(),
            Some(300.0)
        );
        assert_eq!(state("20", Some("°C")).reading().unwrap().watts(), None);
        for dead in ["unavailable", "unknown", "", "NaN", "on"] {
            assert!(state(dead, Some("W")).reading().is_none(), "{dead}");
        }
    }

    #[test]
    fn statuses_are_classified_for_retry() {
        assert!(from_status("x", 503, "").is_transient());
        assert!(from_status("x", 429, "").is_transient());
        let unauthorized = from_status("x", 401, "401: Unauthorized");
        assert!(!unauthorized.is_transient());
        assert!(unauthorized.to_string().contains("HA_TOKEN"));
        assert!(!from_status("x", 404, "").is_transient());
    }
}
