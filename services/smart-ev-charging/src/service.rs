//! The I/O around the decision: Home Assistant in and out, MQTT status and discovery.

use homelab::discovery::{self, Entity};
use homelab::ha::HomeAssistant;
use homelab::{Context, Health, Message, Service, Settings};
use serde::{Deserialize, Serialize};
use smart_ev_charging::control::{
    BatteryPriority, Config, Controller, Decision, Demand, Meters, Mode,
};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub(crate) struct ChargingSettings {
    smart_ev_mode: String,
    smart_ev_grid_power_entity: String,
    smart_ev_grid_export_positive: bool,
    smart_ev_battery_power_entity: String,
    smart_ev_battery_charge_positive: bool,
    smart_ev_battery_soc_entity: String,
    smart_ev_battery_priority_soc: f64,
    smart_ev_ev_power_entity: String,
    smart_ev_wallbox_current_entity: String,
    smart_ev_phase_switch_entity: String,
    smart_ev_phase_switch_delay_seconds: f64,
    smart_ev_phase_grace_seconds: f64,
    smart_ev_min_current_a: f64,
    smart_ev_max_current_a: f64,
    smart_ev_current_step_a: f64,
    smart_ev_phases: f64,
    smart_ev_voltage_v: f64,
    smart_ev_grid_reserve_w: f64,
    smart_ev_enable_delay_seconds: f64,
    smart_ev_disable_delay_seconds: f64,
    smart_ev_min_command_interval_seconds: f64,
    smart_ev_cycle_seconds: u64,
    smart_ev_sensor_timeout_seconds: f64,
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
            smart_ev_cycle_seconds: 30,
            smart_ev_sensor_timeout_seconds: 300.0,
        }
    }
}

impl ChargingSettings {
    fn config(&self) -> Config {
        Config {
            min_current_a: self.smart_ev_min_current_a,
            max_current_a: self.smart_ev_max_current_a,
            current_step_a: self.smart_ev_current_step_a,
            phases: self.smart_ev_phases,
            voltage_v: self.smart_ev_voltage_v,
            grid_reserve_w: self.smart_ev_grid_reserve_w,
            battery_priority: if self.smart_ev_battery_priority_soc > 0.0 {
                BatteryPriority::HomeFirstUntil(self.smart_ev_battery_priority_soc)
            } else {
                BatteryPriority::CarFirst
            },
            enable_delay_s: self.smart_ev_enable_delay_seconds,
            disable_delay_s: self.smart_ev_disable_delay_seconds,
            min_command_interval_s: self.smart_ev_min_command_interval_seconds,
            phase_switching: !self.smart_ev_phase_switch_entity.is_empty(),
            phase_switch_delay_s: self.smart_ev_phase_switch_delay_seconds,
            phase_grace_s: self.smart_ev_phase_grace_seconds,
        }
    }

    fn watched_entities(&self) -> Vec<String> {
        [
            &self.smart_ev_grid_power_entity,
            &self.smart_ev_battery_power_entity,
            &self.smart_ev_battery_soc_entity,
            &self.smart_ev_ev_power_entity,
        ]
        .into_iter()
        .filter(|entity| !entity.is_empty())
        .cloned()
        .collect()
    }
}

/// What survives a restart: the mode a person chose in HA.
#[derive(Debug, Default, Serialize, Deserialize)]
struct ChargingState {
    mode: Option<Mode>,
}

/// ev-forecast's plan, as much of it as this service acts on.
#[derive(Clone, Debug, Deserialize)]
struct Plan {
    energy_needed_kwh: f64,
    deadline: Option<chrono::DateTime<chrono::Utc>>,
    /// Known SoC: the plan already counts what is in the car.
    #[serde(default)]
    ev_soc: Option<f64>,
}

/// The plan and what the car got since it came (for plans that cannot see the SoC).
#[derive(Debug, Default)]
struct PlanProgress {
    plan: Option<Plan>,
    delivered_kwh: f64,
    last_sample: Option<Instant>,
}

impl PlanProgress {
    fn update(&mut self, plan: Plan) {
        if self.plan.as_ref().map(|p| p.deadline) != Some(plan.deadline) {
            self.delivered_kwh = 0.0;
        }
        self.plan = Some(plan);
    }

    fn count(&mut self, ev_power_w: Option<f64>) {
        let now = Instant::now();
        if let (Some(last), Some(watts)) = (self.last_sample, ev_power_w) {
            self.delivered_kwh += watts.max(0.0) * (now - last).as_secs_f64() / 3_600_000.0;
        }
        self.last_sample = Some(now);
    }

    fn demand(&self, now: chrono::DateTime<chrono::Utc>) -> Option<Demand> {
        let plan = self.plan.as_ref()?;
        let deadline = plan.deadline.filter(|d| *d > now)?;
        let energy_kwh = if plan.ev_soc.is_some() {
            plan.energy_needed_kwh
        } else {
            (plan.energy_needed_kwh - self.delivered_kwh).max(0.0)
        };
        Some(Demand {
            energy_kwh,
            hours_left: (deadline - now).num_seconds() as f64 / 3600.0,
        })
    }
}

pub(crate) struct SmartEvCharging {
    plan: Mutex<PlanProgress>,
    settings: ChargingSettings,
    config: Config,
    started: Instant,
    mode: Mutex<Mode>,
    controller: Mutex<Controller>,
    last: Mutex<Option<Decision>>,
    store: homelab::StateStore<ChargingState>,
}

fn entities() -> Vec<Entity> {
    vec![
        Entity::select("mode", "Charging mode", &Mode::ALL).icon("mdi:ev-station"),
        Entity::sensor("surplus_power", "PV surplus")
            .unit("W")
            .device_class("power")
            .state_class("measurement"),
        Entity::sensor("target_current", "Target current")
            .unit("A")
            .device_class("current")
            .state_class("measurement"),
        Entity::sensor("reason", "Last decision"),
    ]
}

impl Service for SmartEvCharging {
    const NAME: &'static str = "smart-ev-charging";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const ABOUT: &'static str =
        "Charges the car from PV surplus (modes off, pv, min_pv, fast, smart).";
    const USES_HOME_ASSISTANT: bool = true;
    type Settings = ChargingSettings;

    fn new(ctx: &Context<ChargingSettings>) -> anyhow::Result<Self> {
        let settings = ctx.settings().clone();
        let configured = Mode::parse(&settings.smart_ev_mode)
            .map_err(|error| anyhow::anyhow!("SMART_EV_MODE: {error}"))?;
        let store = ctx.state_store::<ChargingState>();
        let mode = store.load().state.mode.unwrap_or(configured);
        Ok(Self {
            config: settings.config(),
            settings,
            started: Instant::now(),
            mode: Mutex::new(mode),
            controller: Mutex::new(Controller::default()),
            plan: Mutex::new(PlanProgress::default()),
            last: Mutex::new(None),
            store,
        })
    }

    async fn run(self: Arc<Self>, ctx: Context<ChargingSettings>) -> anyhow::Result<()> {
        discovery::announce(ctx.mqtt(), Self::VERSION, &entities()).await?;
        let mode = *self.mode.lock().expect("poisoned");
        discovery::publish_state(ctx.mqtt(), "mode", mode.as_str()).await?;
        let service = self.clone();
        let mqtt = ctx.mqtt().clone();
        ctx.mqtt()
            .subscribe_text(
                &discovery::command_topic(Self::NAME, "mode"),
                move |message: Message<String>| {
                    let service = service.clone();
                    let mqtt = mqtt.clone();
                    async move {
                        let mode = Mode::parse(&message.payload).map_err(anyhow::Error::msg)?;
                        *service.mode.lock().expect("poisoned") = mode;
                        if let Err(error) = service.store.save(&ChargingState { mode: Some(mode) })
                        {
                            tracing::warn!(error = %error, "state_save_failed");
                        }
                        discovery::publish_state(&mqtt, "mode", mode.as_str()).await?;
                        tracing::info!(mode = mode.as_str(), "mode_changed");
                        Ok(())
                    }
                },
            )
            .await?;

        let service = self.clone();
        ctx.subscribe("homelab/ev-forecast/plan", move |message: Message<Plan>| {
            let service = service.clone();
            async move {
                tracing::info!(
                    energy_needed_kwh = message.payload.energy_needed_kwh,
                    deadline = ?message.payload.deadline,
                    "plan_received"
                );
                service
                    .plan
                    .lock()
                    .expect("poisoned")
                    .update(message.payload);
                Ok(())
            }
        })
        .await?;

        let ha = ctx.home_assistant().clone();
        let mut changes =
            ha.subscribe_state_changes(self.settings.watched_entities(), ctx.shutdown().clone());
        let mut cycle = tokio::time::interval(Duration::from_secs(
            self.settings.smart_ev_cycle_seconds.max(1),
        ));
        tracing::info!(mode = mode.as_str(), "service_started");
        loop {
            tokio::select! {
                () = ctx.shutdown().cancelled() => return Ok(()),
                _ = cycle.tick() => {}
                change = changes.next() => if change.is_none() {
                    // The subscription ended (a refused token): keep the safety cycle going.
                    tokio::time::sleep(Duration::from_secs(1)).await;
                },
            }
            if let Err(error) = self.evaluate(&ctx, &ha).await {
                tracing::error!(error = format!("{error:#}"), "charging_cycle_failed");
            }
        }
    }

    fn health(&self) -> Health {
        let last = self.last.lock().expect("poisoned").clone();
        Health::online()
            .with("mode", self.mode.lock().expect("poisoned").as_str())
            .with("target_current_a", last.as_ref().and_then(|d| d.current_a))
            .with("reason", last.map(|d| d.reason))
    }

    fn diagnose_steps(_settings: &Settings<ChargingSettings>) -> Vec<homelab::Step> {
        Vec::new()
    }
}

impl SmartEvCharging {
    /// A reading in watts, or `None` when unavailable, not a power, or stale.
    async fn watts(&self, ha: &HomeAssistant, entity: &str) -> Option<f64> {
        if entity.is_empty() {
            return None;
        }
        let state = ha.get_state(entity).await.ok()?;
        if state
            .age_seconds()
            .is_some_and(|age| age > self.settings.smart_ev_sensor_timeout_seconds)
        {
            tracing::warn!(entity_id = entity, "sensor_stale");
            return None;
        }
        state.reading()?.power_watts()
    }

    async fn evaluate(
        &self,
        ctx: &Context<ChargingSettings>,
        ha: &HomeAssistant,
    ) -> anyhow::Result<()> {
        let settings = &self.settings;
        let sign = |positive: bool| if positive { 1.0 } else { -1.0 };
        let battery_configured = !settings.smart_ev_battery_power_entity.is_empty();
        let meters = Meters {
            grid_export_w: self
                .watts(ha, &settings.smart_ev_grid_power_entity)
                .await
                .map(|w| w * sign(settings.smart_ev_grid_export_positive)),
            battery_charge_w: if battery_configured {
                self.watts(ha, &settings.smart_ev_battery_power_entity)
                    .await
                    .map(|w| w * sign(settings.smart_ev_battery_charge_positive))
            } else {
                Some(0.0)
            },
            battery_soc: if settings.smart_ev_battery_soc_entity.is_empty() {
                None
            } else {
                ha.read(&settings.smart_ev_battery_soc_entity)
                    .await
                    .ok()
                    .map(|r| r.value)
            },
            ev_power_w: self.watts(ha, &settings.smart_ev_ev_power_entity).await,
            demand: None,
        };
        let meters = {
            let mut plan = self.plan.lock().expect("poisoned");
            plan.count(meters.ev_power_w);
            Meters {
                demand: plan.demand(chrono::Utc::now()),
                ..meters
            }
        };
        let mode = *self.mode.lock().expect("poisoned");
        let now = self.started.elapsed().as_secs_f64();
        let decision =
            self.controller
                .lock()
                .expect("poisoned")
                .decide(mode, &meters, &self.config, now);
        let surplus = smart_ev_charging::control::surplus_w(&meters, &self.config);

        if decision.send || decision.phases_changed {
            if ha.is_safe_mode(&ctx.common().safe_mode_entity).await {
                tracing::warn!(reason = %decision.reason, "safe_mode_no_write");
                // Forget the unsent command so that it is sent once safe mode is off.
                *self.controller.lock().expect("poisoned") = Controller::default();
            } else {
                // Phases first, so the new current never runs on the old phase count.
                if decision.phases_changed {
                    let entity = &settings.smart_ev_phase_switch_entity;
                    let domain = entity.split('.').next().unwrap_or("number");
                    ha.call_service(
                        domain,
                        "set_value",
                        &serde_json::json!({"entity_id": entity, "value": decision.phases}),
                    )
                    .await?;
                    tracing::info!(phases = decision.phases, "wallbox_phases_set");
                }
                let entity = &settings.smart_ev_wallbox_current_entity;
                let domain = entity.split('.').next().unwrap_or("number");
                let value = decision.current_a.unwrap_or(0.0);
                ha.call_service(
                    domain,
                    "set_value",
                    &serde_json::json!({"entity_id": entity, "value": value}),
                )
                .await?;
                tracing::info!(current_a = value, reason = %decision.reason, "wallbox_current_set");
            }
        }
        let mqtt = ctx.mqtt();
        discovery::publish_state(
            mqtt,
            "surplus_power",
            surplus.map_or("unknown".into(), |w| format!("{w:.0}")),
        )
        .await?;
        discovery::publish_state(mqtt, "target_current", decision.current_a.unwrap_or(0.0)).await?;
        discovery::publish_state(mqtt, "reason", &decision.reason).await?;
        ctx.publish(
            "status",
            &serde_json::json!({
                "mode": mode.as_str(),
                "surplus_w": surplus,
                "target_current_a": decision.current_a,
                "reason": decision.reason,
                "demand_kwh": meters.demand.map(|d| d.energy_kwh),
                "hours_left": meters.demand.map(|d| d.hours_left),
            }),
        )
        .await?;
        *self.last.lock().expect("poisoned") = Some(decision);
        ctx.touch_health();
        Ok(())
    }
}
