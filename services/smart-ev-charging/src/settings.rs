//! `SMART_EV_*` settings, and the rule sets the pure modules take from them.

use homelab::ha::valid_entity_id;
use serde::Deserialize;
use smart_ev_charging::control::{BatteryPolicy, Config};
use smart_ev_charging::meters::Trust;
use smart_ev_charging::plan::SmartConfig;

#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub(crate) struct ChargingSettings {
    pub smart_ev_mode: String,
    pub smart_ev_grid_power_entity: String,
    pub smart_ev_grid_export_positive: bool,
    pub smart_ev_battery_power_entity: String,
    pub smart_ev_battery_charge_positive: bool,
    pub smart_ev_battery_soc_entity: String,
    pub smart_ev_battery_priority_soc: f64,
    pub smart_ev_battery_buffer_soc: f64,
    pub smart_ev_battery_buffer_start_soc: f64,
    pub smart_ev_battery_hold_entity: String,
    pub smart_ev_ev_power_entity: String,
    pub smart_ev_wallbox_current_entity: String,
    pub smart_ev_phase_switch_entity: String,
    pub smart_ev_phase_switch_delay_seconds: f64,
    pub smart_ev_phase_grace_seconds: f64,
    pub smart_ev_min_current_a: f64,
    pub smart_ev_max_current_a: f64,
    pub smart_ev_current_step_a: f64,
    pub smart_ev_phases: f64,
    pub smart_ev_voltage_v: f64,
    pub smart_ev_grid_reserve_w: f64,
    pub smart_ev_enable_delay_seconds: f64,
    pub smart_ev_disable_delay_seconds: f64,
    pub smart_ev_min_command_interval_seconds: f64,
    pub smart_ev_retry_seconds: f64,
    pub smart_ev_cycle_seconds: u64,
    pub smart_ev_sensor_timeout_seconds: f64,
    pub smart_ev_meter_follow_seconds: f64,
    pub smart_ev_meter_step_w: f64,
    pub smart_ev_house_load_w: f64,
}

impl Default for ChargingSettings {
    fn default() -> Self {
        Self {
            smart_ev_mode: "pv".into(),
            smart_ev_grid_power_entity: "sensor.grid_power".into(),
            smart_ev_grid_export_positive: true,
            smart_ev_battery_power_entity: String::new(),
            smart_ev_battery_charge_positive: true,
            smart_ev_battery_soc_entity: String::new(),
            smart_ev_battery_priority_soc: 80.0,
            smart_ev_battery_buffer_soc: 0.0,
            smart_ev_battery_buffer_start_soc: 0.0,
            smart_ev_battery_hold_entity: String::new(),
            smart_ev_ev_power_entity: "sensor.wallbox_power".into(),
            smart_ev_wallbox_current_entity: "number.wallbox_current".into(),
            smart_ev_phase_switch_entity: String::new(),
            smart_ev_phase_switch_delay_seconds: 120.0,
            smart_ev_phase_grace_seconds: 300.0,
            smart_ev_min_current_a: 6.0,
            smart_ev_max_current_a: 16.0,
            smart_ev_current_step_a: 1.0,
            smart_ev_phases: 3.0,
            smart_ev_voltage_v: 230.0,
            smart_ev_grid_reserve_w: 100.0,
            smart_ev_enable_delay_seconds: 60.0,
            smart_ev_disable_delay_seconds: 180.0,
            smart_ev_min_command_interval_seconds: 30.0,
            smart_ev_retry_seconds: 10.0,
            smart_ev_cycle_seconds: 30,
            smart_ev_sensor_timeout_seconds: 300.0,
            smart_ev_meter_follow_seconds: 20.0,
            smart_ev_meter_step_w: 1000.0,
            smart_ev_house_load_w: 500.0,
        }
    }
}

/// 0 = off, as `.env.example` documents.
fn optional_soc(value: f64) -> Option<f64> {
    (value > 0.0).then_some(value)
}

impl ChargingSettings {
    /// Refuses settings that would make the controller do something no one meant.
    pub fn validate(&self) -> anyhow::Result<()> {
        let mut wrong = Vec::new();
        for (name, entity, required) in [
            (
                "SMART_EV_GRID_POWER_ENTITY",
                &self.smart_ev_grid_power_entity,
                true,
            ),
            (
                "SMART_EV_EV_POWER_ENTITY",
                &self.smart_ev_ev_power_entity,
                true,
            ),
            (
                "SMART_EV_WALLBOX_CURRENT_ENTITY",
                &self.smart_ev_wallbox_current_entity,
                true,
            ),
            (
                "SMART_EV_BATTERY_POWER_ENTITY",
                &self.smart_ev_battery_power_entity,
                false,
            ),
            (
                "SMART_EV_BATTERY_SOC_ENTITY",
                &self.smart_ev_battery_soc_entity,
                false,
            ),
            (
                "SMART_EV_PHASE_SWITCH_ENTITY",
                &self.smart_ev_phase_switch_entity,
                false,
            ),
        ] {
            if (required || !entity.is_empty()) && !valid_entity_id(entity) {
                wrong.push(format!(
                    "{name}={entity:?} is not an entity id like sensor.grid_power"
                ));
            }
        }
        if !(self.smart_ev_min_current_a > 0.0
            && self.smart_ev_min_current_a <= self.smart_ev_max_current_a)
        {
            wrong.push(format!(
                "SMART_EV_MIN_CURRENT_A={} must be above 0 and at most SMART_EV_MAX_CURRENT_A={}",
                self.smart_ev_min_current_a, self.smart_ev_max_current_a
            ));
        }
        if self.smart_ev_phases != 1.0 && self.smart_ev_phases != 3.0 {
            wrong.push(format!(
                "SMART_EV_PHASES={} must be 1 or 3",
                self.smart_ev_phases
            ));
        }
        if self.smart_ev_current_step_a <= 0.0 {
            wrong.push(format!(
                "SMART_EV_CURRENT_STEP_A={} must be above 0",
                self.smart_ev_current_step_a
            ));
        }
        if wrong.is_empty() {
            Ok(())
        } else {
            anyhow::bail!("{}", wrong.join("; "))
        }
    }

    pub fn config(&self) -> Config {
        Config {
            min_current_a: self.smart_ev_min_current_a,
            max_current_a: self.smart_ev_max_current_a,
            current_step_a: self.smart_ev_current_step_a,
            phases: self.smart_ev_phases,
            voltage_v: self.smart_ev_voltage_v,
            grid_reserve_w: self.smart_ev_grid_reserve_w,
            battery: BatteryPolicy {
                priority_soc: self.smart_ev_battery_priority_soc,
                buffer_soc: optional_soc(self.smart_ev_battery_buffer_soc),
                buffer_start_soc: optional_soc(self.smart_ev_battery_buffer_start_soc),
            },
            enable_delay_s: self.smart_ev_enable_delay_seconds,
            disable_delay_s: self.smart_ev_disable_delay_seconds,
            min_command_interval_s: self.smart_ev_min_command_interval_seconds,
            phase_switching: !self.smart_ev_phase_switch_entity.is_empty(),
            phase_switch_delay_s: self.smart_ev_phase_switch_delay_seconds,
            phase_grace_s: self.smart_ev_phase_grace_seconds,
        }
    }

    pub fn trust(&self) -> Trust {
        Trust {
            max_age_s: self.smart_ev_sensor_timeout_seconds,
            follow_window_s: self.smart_ev_meter_follow_seconds,
            step_w: self.smart_ev_meter_step_w,
        }
    }

    pub fn smart_config(&self) -> SmartConfig {
        let config = self.config();
        SmartConfig {
            max_power_kw: config.max_current_a * config.phases * config.voltage_v / 1000.0,
            min_power_kw: config.minimum_w(if config.phase_switching {
                1.0
            } else {
                config.phases
            }) / 1000.0,
            house_load_kw: self.smart_ev_house_load_w / 1000.0,
            ..SmartConfig::default()
        }
    }

    /// The meters and the wallbox current, each with whether it is a power.
    pub fn meter_entities(&self) -> Vec<(&str, bool)> {
        [
            (self.smart_ev_grid_power_entity.as_str(), true),
            (&self.smart_ev_ev_power_entity, true),
            (&self.smart_ev_battery_power_entity, true),
            (&self.smart_ev_battery_soc_entity, false),
            (&self.smart_ev_wallbox_current_entity, false),
        ]
        .into_iter()
        .filter(|(entity, _)| !entity.is_empty())
        .collect()
    }

    pub fn battery_configured(&self) -> bool {
        !self.smart_ev_battery_power_entity.is_empty()
    }

    /// Everything the decision listens to: meters, the wallbox's own entities, safe mode.
    pub fn watched_entities(&self, safe_mode_entity: &str) -> Vec<String> {
        [
            self.smart_ev_grid_power_entity.as_str(),
            &self.smart_ev_battery_power_entity,
            &self.smart_ev_battery_soc_entity,
            &self.smart_ev_ev_power_entity,
            &self.smart_ev_wallbox_current_entity,
            &self.smart_ev_phase_switch_entity,
            &self.smart_ev_battery_hold_entity,
            safe_mode_entity,
        ]
        .into_iter()
        .filter(|entity| !entity.is_empty())
        .map(str::to_string)
        .collect()
    }
}
