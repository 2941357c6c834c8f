//! What a service implements, and what the runtime hands it.

use crate::diagnose::Step;
use crate::ha::HomeAssistant;
use crate::health;
use crate::influx::Influx;
use crate::mqtt::{Message, Mqtt, MqttError};
use crate::settings::{CommonSettings, Settings};
use crate::state::StateStore;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};
use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// A homelab service. Its `main` is `homelab::run::<MyService>()`.
pub trait Service: Sized + Send + Sync + 'static {
    /// Used in topics, the MQTT client id, logs and the CLI.
    const NAME: &'static str;
    /// Usually `env!("CARGO_PKG_VERSION")`.
    const VERSION: &'static str;
    /// One line for `--help`.
    const ABOUT: &'static str = "";

    /// The service's own settings, read from the same variables as the common ones.
    /// Use `#[serde(default)]` so that every field has a default.
    type Settings: DeserializeOwned + Debug + Send + Sync + 'static;

    /// Builds the service (load state, check settings). An error stops start-up.
    fn new(ctx: &Context<Self::Settings>) -> anyhow::Result<Self>;

    /// The work. Return when `ctx.shutdown()` is cancelled; an error exits non-zero
    /// after the same clean shutdown.
    fn run(
        self: Arc<Self>,
        ctx: Context<Self::Settings>,
    ) -> impl Future<Output = anyhow::Result<()>> + Send;

    /// Extra heartbeat fields, and whether the service is degraded.
    fn health(&self) -> Health {
        Health::online()
    }

    /// Whether this configuration talks to Home Assistant. Then `diagnose` runs the
    /// `ha_api` and `ha_websocket` steps, `/readyz` is not ready while the last HA
    /// request failed, and the heartbeat lists `home_assistant` in `integrations`.
    /// Decided from the settings, so that a feature left unconfigured needs no HA.
    fn uses_home_assistant(_settings: &Settings<Self::Settings>) -> bool {
        false
    }

    /// Whether this configuration writes to or reads from InfluxDB: adds the `influx`
    /// step to `diagnose` and `influx` to the heartbeat's `integrations`.
    fn uses_influx(_settings: &Settings<Self::Settings>) -> bool {
        false
    }

    /// Extra `diagnose` steps, run after `config` and `mqtt`. Runs without the service.
    fn diagnose_steps(_settings: &Settings<Self::Settings>) -> Vec<Step> {
        Vec::new()
    }
}

/// A service's own view of its health, published in every heartbeat.
#[derive(Clone, Debug, Default)]
pub struct Health {
    degraded: Option<String>,
    fields: Map<String, Value>,
}

impl Health {
    pub fn online() -> Self {
        Self::default()
    }

    pub fn degraded(reason: impl Into<String>) -> Self {
        Self {
            degraded: Some(reason.into()),
            fields: Map::new(),
        }
    }

    /// Adds a field to the heartbeat (e.g. `cycles`, `last_forecast_age_seconds`).
    pub fn with(mut self, key: &str, value: impl Serialize) -> Self {
        self.fields.insert(
            key.to_string(),
            serde_json::to_value(value).unwrap_or(Value::Null),
        );
        self
    }

    pub fn is_degraded(&self) -> bool {
        self.degraded.is_some()
    }

    pub fn reason(&self) -> Option<&str> {
        self.degraded.as_deref()
    }

    pub fn fields(&self) -> &Map<String, Value> {
        &self.fields
    }
}

/// What the runtime hands a service: settings, the MQTT handle, the shutdown token.
pub struct Context<S> {
    name: &'static str,
    settings: Arc<Settings<S>>,
    mqtt: Mqtt,
    ha: HomeAssistant,
    influx: Option<Influx>,
    shutdown: CancellationToken,
}

impl<S> Clone for Context<S> {
    fn clone(&self) -> Self {
        Self {
            name: self.name,
            settings: self.settings.clone(),
            mqtt: self.mqtt.clone(),
            ha: self.ha.clone(),
            influx: self.influx.clone(),
            shutdown: self.shutdown.clone(),
        }
    }
}

impl<S> Context<S> {
    pub fn new(
        name: &'static str,
        settings: Arc<Settings<S>>,
        mqtt: Mqtt,
        shutdown: CancellationToken,
    ) -> Self {
        let ha = HomeAssistant::from_settings_until(&settings.common, shutdown.clone());
        let influx = Influx::from_settings(&settings.common);
        Self {
            name,
            settings,
            mqtt,
            ha,
            influx,
            shutdown,
        }
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The service's own settings.
    pub fn settings(&self) -> &S {
        &self.settings.service
    }

    pub fn common(&self) -> &CommonSettings {
        &self.settings.common
    }

    pub fn mqtt(&self) -> &Mqtt {
        &self.mqtt
    }

    /// InfluxDB, when `INFLUXDB_URL` is set.
    pub fn influx(&self) -> Option<&Influx> {
        self.influx.as_ref()
    }

    /// Home Assistant at `HA_URL` with `HA_TOKEN`; nothing connects until the first call.
    pub fn home_assistant(&self) -> &HomeAssistant {
        &self.ha
    }

    /// Cancelled on SIGTERM/SIGINT; `run` should return soon after.
    pub fn shutdown(&self) -> &CancellationToken {
        &self.shutdown
    }

    /// `publish` on `homelab/{service}/{event}`, in the envelope.
    pub async fn publish<T: Serialize + ?Sized>(
        &self,
        event: &str,
        payload: &T,
    ) -> Result<(), MqttError> {
        self.mqtt.publish(event, payload).await
    }

    pub async fn subscribe<T, F, Fut>(&self, filter: &str, handler: F) -> Result<(), MqttError>
    where
        T: DeserializeOwned + Send + 'static,
        F: Fn(Message<T>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        self.mqtt.subscribe(filter, handler).await
    }

    /// Marks a successful cycle for the `healthcheck` subcommand.
    pub fn touch_health(&self) {
        health::touch(&self.settings.common.data_dir);
    }

    /// The typed state file `DATA_DIR/state.json`.
    pub fn state_store<T: Serialize + DeserializeOwned + Default>(&self) -> StateStore<T> {
        StateStore::new(&self.settings.common.data_dir)
    }

    /// Sleeps for `duration`; `false` when shutdown came first.
    pub async fn sleep(&self, duration: Duration) -> bool {
        tokio::select! {
            () = tokio::time::sleep(duration) => true,
            () = self.shutdown.cancelled() => false,
        }
    }
}
