//! Home Assistant MQTT discovery: a service declares its entities once and they appear
//! in HA with no YAML — one HA device per service, available while the service's
//! heartbeat is not `offline` (so the last will takes them offline too).
//!
//! Discovery configs are plain JSON (no envelope: HA validates their keys). States are
//! retained plain values on `homelab/{service}/entity/{object}/state`; commands from HA
//! arrive as plain text on `…/set` (use [`crate::Mqtt::subscribe_text`]).

use crate::mqtt::{Mqtt, MqttError, QoS};
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// The HA entity platforms we publish.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Component {
    Sensor,
    BinarySensor,
    Number,
    Select,
    Switch,
    /// A line of text HA lets a person type (the MQTT `text` platform).
    Text,
}

impl Component {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sensor => "sensor",
            Self::BinarySensor => "binary_sensor",
            Self::Number => "number",
            Self::Select => "select",
            Self::Switch => "switch",
            Self::Text => "text",
        }
    }

    /// Whether HA can change it (it gets a command topic).
    pub fn takes_commands(self) -> bool {
        matches!(
            self,
            Self::Number | Self::Select | Self::Switch | Self::Text
        )
    }
}

/// One entity a service exposes.
#[derive(Clone, Debug)]
pub struct Entity {
    pub component: Component,
    /// Stable id within the service, `snake_case` (part of topics and unique_id).
    pub object_id: String,
    pub name: String,
    extra: Map<String, Value>,
}

impl Entity {
    fn new(component: Component, object_id: &str, name: &str) -> Self {
        Self {
            component,
            object_id: object_id.to_string(),
            name: name.to_string(),
            extra: Map::new(),
        }
    }

    pub fn sensor(object_id: &str, name: &str) -> Self {
        Self::new(Component::Sensor, object_id, name)
    }

    pub fn binary_sensor(object_id: &str, name: &str) -> Self {
        Self::new(Component::BinarySensor, object_id, name)
            .with("payload_on", "ON")
            .with("payload_off", "OFF")
    }

    pub fn number(object_id: &str, name: &str, min: f64, max: f64, step: f64) -> Self {
        Self::new(Component::Number, object_id, name)
            .with("min", min)
            .with("max", max)
            .with("step", step)
            .with("mode", "box")
    }

    pub fn select(object_id: &str, name: &str, options: &[&str]) -> Self {
        Self::new(Component::Select, object_id, name).with("options", options)
    }

    pub fn switch(object_id: &str, name: &str) -> Self {
        Self::new(Component::Switch, object_id, name)
            .with("payload_on", "ON")
            .with("payload_off", "OFF")
    }

    /// A text box of at most `max` characters (HA's limit is 255).
    pub fn text(object_id: &str, name: &str, max: u32) -> Self {
        Self::new(Component::Text, object_id, name)
            .with("max", max.min(255))
            .with("mode", "text")
    }

    pub fn unit(self, unit: &str) -> Self {
        self.with("unit_of_measurement", unit)
    }

    /// e.g. `power`, `energy`, `battery`, `current`.
    pub fn device_class(self, class: &str) -> Self {
        self.with("device_class", class)
    }

    /// `measurement`, `total` or `total_increasing`.
    pub fn state_class(self, class: &str) -> Self {
        self.with("state_class", class)
    }

    pub fn icon(self, icon: &str) -> Self {
        self.with("icon", icon)
    }

    /// Any other discovery key HA documents for the platform.
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.extra.insert(key.to_string(), value.into());
        self
    }
}

fn node_id(service: &str) -> String {
    format!("homelab_{}", service.replace('-', "_"))
}

/// `homelab/{service}/entity/{object_id}/state`
pub fn state_topic(service: &str, object_id: &str) -> String {
    format!("homelab/{service}/entity/{object_id}/state")
}

/// `homelab/{service}/entity/{object_id}/set`
pub fn command_topic(service: &str, object_id: &str) -> String {
    format!("homelab/{service}/entity/{object_id}/set")
}

/// `homeassistant/{component}/homelab_{service}/{object_id}/config`
pub fn config_topic(service: &str, entity: &Entity) -> String {
    format!(
        "homeassistant/{}/{}/{}/config",
        entity.component.as_str(),
        node_id(service),
        entity.object_id
    )
}

/// The discovery config of `entity` for `service`.
pub fn config(service: &str, version: &str, entity: &Entity) -> Value {
    let node = node_id(service);
    let mut config = entity.extra.clone();
    config.insert("name".into(), json!(entity.name));
    config.insert(
        "unique_id".into(),
        json!(format!("{node}_{}", entity.object_id)),
    );
    config.insert(
        "object_id".into(),
        json!(format!("{node}_{}", entity.object_id)),
    );
    config.insert(
        "state_topic".into(),
        json!(state_topic(service, &entity.object_id)),
    );
    if entity.component.takes_commands() {
        config.insert(
            "command_topic".into(),
            json!(command_topic(service, &entity.object_id)),
        );
    }
    config.insert(
        "availability_topic".into(),
        json!(crate::mqtt::service_topic(service, "heartbeat")),
    );
    config.insert(
        "availability_template".into(),
        json!("{{ 'offline' if value_json.status == 'offline' else 'online' }}"),
    );
    config.insert(
        "device".into(),
        json!({
            "identifiers": [node],
            "name": format!("homelab {service}"),
            "manufacturer": "homelab",
            "model": service,
            "sw_version": version,
        }),
    );
    Value::Object(config)
}

/// Publishes (retained) the discovery config of every entity.
pub async fn announce(mqtt: &Mqtt, version: &str, entities: &[Entity]) -> Result<(), MqttError> {
    for entity in entities {
        let payload = config(mqtt.service(), version, entity).to_string();
        mqtt.publish_raw(
            &config_topic(mqtt.service(), entity),
            payload,
            QoS::AtLeastOnce,
            true,
        )
        .await?;
    }
    Ok(())
}

/// Removes an entity from HA (an empty retained config).
pub async fn remove(mqtt: &Mqtt, entity: &Entity) -> Result<(), MqttError> {
    mqtt.publish_raw(
        &config_topic(mqtt.service(), entity),
        Vec::new(),
        QoS::AtLeastOnce,
        true,
    )
    .await
}

/// Publishes an entity's state (retained, plain text as HA expects).
pub async fn publish_state(
    mqtt: &Mqtt,
    object_id: &str,
    state: impl std::fmt::Display,
) -> Result<(), MqttError> {
    mqtt.publish_raw(
        &state_topic(mqtt.service(), object_id),
        state.to_string(),
        QoS::AtLeastOnce,
        true,
    )
    .await
}

/// A numeric sensor's state: the number, or `None`, which HA's MQTT sensor takes as
/// "no value" (state `unknown`, no error). The string `unknown` is an ERROR in HA's
/// log for a sensor with a unit or device class.
pub fn number(value: Option<f64>, decimals: usize) -> String {
    match value.filter(|v| v.is_finite()) {
        Some(value) => format!("{value:.decimals$}"),
        None => "None".to_string(),
    }
}

/// Which entity states are due: a changed value at once, an unchanged one only after
/// `refresh` (states are retained; the refresh is for HA's history and a broker that
/// lost them).
#[derive(Debug)]
pub struct StateBook {
    refresh: Duration,
    last: HashMap<String, (String, Instant)>,
}

impl StateBook {
    pub fn new(refresh: Duration) -> Self {
        Self {
            refresh,
            last: HashMap::new(),
        }
    }

    /// Whether `value` is to be published for `object_id` at `now`; if so it is
    /// booked as published.
    pub fn due(&mut self, object_id: &str, value: &str, now: Instant) -> bool {
        let due = self
            .last
            .get(object_id)
            .is_none_or(|(last, at)| last != value || now.duration_since(*at) >= self.refresh);
        if due {
            self.last
                .insert(object_id.to_string(), (value.to_string(), now));
        }
        due
    }

    /// Forgets a booking whose publish failed, so that it is tried again.
    pub fn forget(&mut self, object_id: &str) {
        self.last.remove(object_id);
    }
}

#[cfg(test)]
mod state_book_tests {
    use super::*;

    #[test]
    fn numbers_are_numbers_or_none_never_unknown() {
        assert_eq!(number(Some(1234.56), 0), "1235");
        assert_eq!(number(Some(7.25), 1), "7.2");
        assert_eq!(number(None, 1), "None");
        assert_eq!(number(Some(f64::NAN), 1), "None");
    }

    #[test]
    fn a_state_is_due_when_it_changes_or_the_refresh_comes() {
        let start = Instant::now();
        let mut book = StateBook::new(Duration::from_secs(300));
        assert!(book.due("target_current", "8", start));
        assert!(!book.due("target_current", "8", start + Duration::from_secs(1)));
        assert!(book.due("reason", "pv", start), "each entity on its own");
        assert!(book.due("target_current", "9", start + Duration::from_secs(2)));
        assert!(!book.due("target_current", "9", start + Duration::from_secs(301)));
        assert!(book.due("target_current", "9", start + Duration::from_secs(303)));
        book.forget("target_current");
        assert!(book.due("target_current", "9", start + Duration::from_secs(304)));
    }
}
