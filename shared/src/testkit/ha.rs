//! A real Home Assistant core for tests, on a free loopback port.
//!
//! It runs from the virtualenv that scripts/test.sh installs once into
//! `~/.cache/homelab/ha-venv` (or `$HOMELAB_HA_VENV`), with a configuration written
//! here: http, api, websocket_api, onboarding, recorder + history, some input_number /
//! input_boolean helpers and template sensors. A token comes from onboarding
//! (`POST /api/onboarding/users`, then `POST /auth/token`), as a person would get one.

use super::free_port;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn ha_venv() -> PathBuf {
    std::env::var_os("HOMELAB_HA_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/homelab/ha-venv")
        })
}

const CONFIGURATION: &str = r#"
homeassistant:
  name: Test Home
  latitude: 52.0
  longitude: 7.6
  elevation: 60
  unit_system: metric
  time_zone: Europe/Berlin
  currency: EUR
  country: DE
http:
  server_host: 127.0.0.1
  server_port: {port}
api:
websocket_api:
onboarding:
recorder:
  commit_interval: 1
history:
input_number:
  ev_charge_current:
    name: EV charge current
    min: 0
    max: 32
    step: 1
    initial: 6
    unit_of_measurement: A
  pv_power:
    name: PV power
    min: 0
    max: 20000
    step: 1
    initial: 1500
    unit_of_measurement: W
  grid_power:
    name: Grid power
    min: -20000
    max: 20000
    step: 1
    initial: 0
    unit_of_measurement: W
  wallbox_phases:
    name: Wallbox phases
    min: 1
    max: 3
    step: 2
    initial: 3
  wallbox_power:
    name: Wallbox power
    min: 0
    max: 22000
    step: 1
    initial: 0
    unit_of_measurement: W
  battery_power:
    name: Battery power (charging positive)
    min: -10000
    max: 10000
    step: 1
    initial: 0
    unit_of_measurement: W
  battery_soc:
    name: Battery SoC
    min: 0
    max: 100
    step: 1
    initial: 50
    unit_of_measurement: "%"
input_boolean:
  homelab_safe_mode:
    name: Homelab safe mode
    initial: false
  battery_hold:
    name: Battery discharge lock
    initial: false
template:
  - sensor:
      - name: House load
        unique_id: house_load
        unit_of_measurement: kW
        device_class: power
        state: "{{ (states('input_number.pv_power') | float(0) / 1000) | round(3) }}"
      - name: Dead meter
        unique_id: dead_meter
        unit_of_measurement: W
        state: "{{ 1 }}"
        availability: "{{ false }}"
      - name: Unknown meter
        unique_id: unknown_meter
        state: "unknown"
      - name: Text sensor
        unique_id: text_sensor
        state: "charging"
"#;

/// One Home Assistant core process; stopped on drop.
pub struct HomeAssistantCore {
    port: u16,
    config: tempfile::TempDir,
    child: Option<Child>,
    token: String,
}

impl HomeAssistantCore {
    /// Starts HA, waits until it answers, onboards a user and keeps its access token.
    pub async fn start() -> Self {
        let hass = ha_venv().join("bin/hass");
        assert!(
            hass.is_file(),
            "Home Assistant is not installed at {} (scripts/test.sh installs it)",
            hass.display()
        );
        let config = tempfile::tempdir().unwrap();
        let port = free_port();
        std::fs::write(
            config.path().join("configuration.yaml"),
            CONFIGURATION.replace("{port}", &port.to_string()),
        )
        .unwrap();
        let mut core = Self {
            port,
            config,
            child: None,
            token: String::new(),
        };
        core.launch().await;
        core.token = core.onboard().await;
        core
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn token(&self) -> &str {
        &self.token
    }

    /// HA's own log, for a failing test's message.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.config.path().join("home-assistant.log")).unwrap_or_default()
    }

    async fn launch(&mut self) {
        let child = Command::new(ha_venv().join("bin/hass"))
            .arg("--config")
            .arg(self.config.path())
            .arg("--skip-pip")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("cannot start hass");
        self.child = Some(child);
        self.wait_until_ready("Home Assistant did not start", Duration::from_secs(180))
            .await;
    }

    async fn wait_until_ready(&self, failure: &str, limit: Duration) {
        let deadline = Instant::now() + limit;
        while !self.entities_ready().await {
            assert!(
                Instant::now() < deadline,
                "{failure} within {limit:?}:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Before onboarding: the onboarding API answers. After: our template sensor exists.
    async fn entities_ready(&self) -> bool {
        let client = reqwest::Client::new();
        let request = if self.token.is_empty() {
            client.get(format!("{}/api/onboarding", self.url()))
        } else {
            client
                .get(format!("{}/api/states/sensor.house_load", self.url()))
                .bearer_auth(&self.token)
        };
        request
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .is_ok_and(|response| response.status().is_success())
    }

    async fn onboard(&mut self) -> String {
        let client = reqwest::Client::new();
        let client_id = format!("{}/", self.url());
        let created: serde_json::Value = client
            .post(format!("{}/api/onboarding/users", self.url()))
            .json(&serde_json::json!({
                "client_id": client_id,
                "name": "Test",
                "username": "test",
                "password": "test-password-123",
                "language": "en",
            }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let code = created["auth_code"]
            .as_str()
            .unwrap_or_else(|| panic!("onboarding failed: {created}"));
        let answer: serde_json::Value = client
            .post(format!("{}/auth/token", self.url()))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("client_id", &client_id),
            ])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        self.token = answer["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("no token: {answer}"))
            .to_string();
        self.wait_until_ready("entities never appeared", Duration::from_secs(120))
            .await;
        self.token.clone()
    }

    /// Sets up HA's MQTT integration against a broker on `port`, through the same
    /// config-flow API the UI uses (MQTT has no YAML set-up in this HA version).
    pub async fn connect_mqtt(&self, port: u16) {
        let client = reqwest::Client::new();
        let flow: serde_json::Value = client
            .post(format!("{}/api/config/config_entries/flow", self.url()))
            .bearer_auth(&self.token)
            .json(&serde_json::json!({"handler": "mqtt", "show_advanced_options": false}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let flow_id = flow["flow_id"]
            .as_str()
            .unwrap_or_else(|| panic!("no MQTT flow: {flow}"));
        let done: serde_json::Value = client
            .post(format!(
                "{}/api/config/config_entries/flow/{flow_id}",
                self.url()
            ))
            .bearer_auth(&self.token)
            .json(&serde_json::json!({"broker": "127.0.0.1", "port": port}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            done["type"],
            "create_entry",
            "MQTT set-up failed: {done}\n{}",
            self.log()
        );
    }

    /// SIGTERM, wait, start again with the same configuration and storage (the token stays valid).
    pub async fn restart(&mut self) {
        self.stop();
        self.launch().await;
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(30);
            while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for HomeAssistantCore {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
