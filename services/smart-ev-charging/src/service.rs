//! The I/O around the decision: Home Assistant in and out, MQTT status and discovery.
//! Every input (a meter or wallbox event, a mode, a plan, a forecast, safe mode, a
//! timer running out) wakes one loop that decides and reconciles the wallbox at once;
//! the cycle only refreshes the readings over REST as a backstop.

use crate::settings::ChargingSettings;
use homelab::discovery::{self, Entity, StateBook};
use homelab::ha::{EntityState, HomeAssistant, StateChange};
use homelab::{Context, Health, Message, Service, Settings};
use serde::{Deserialize, Serialize};
use smart_ev_charging::control::{battery_hold, Config, Controller, Decision, Mode};
use smart_ev_charging::meters::{Meter, MeterCache};
use smart_ev_charging::plan::{Plan, PvForecast, Smart, SmartConfig, Verdict};
use smart_ev_charging::reconcile::{Actual, Reconciler, Setpoint, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// What survives a restart: the mode a person chose in HA.
#[derive(Debug, Default, Serialize, Deserialize)]
struct ChargingState {
    mode: Option<Mode>,
}

/// Everything a decision reads and remembers, behind one lock (never held across I/O).
struct Core {
    meters: MeterCache,
    controller: Controller,
    smart: Smart,
    reconciler: Reconciler,
    wallbox: Actual,
    /// What the battery lock was last decided to be (its hysteresis).
    battery_held: bool,
    safe_mode: bool,
    last: Option<Decision>,
    /// Why the last decision could not trust its inputs (meters, HA): the health.
    problems: Vec<String>,
    /// HA's REST or WebSocket API failing, until it answers again.
    ha_problem: Option<String>,
    /// When to decide again by time alone.
    wake_at: Option<Instant>,
}

/// What one decision produced, to be sent and published outside the lock.
struct Outcome {
    /// The decision had every reading it needed, and HA answered.
    trusted: bool,
    writes: Vec<Write>,
    decision: Decision,
    mode: Mode,
    surplus_w: Option<f64>,
    remaining_kwh: Option<f64>,
    shortfall_kwh: Option<f64>,
    meters: homelab::messages::smart_ev_charging::MetersNow,
}

pub(crate) struct SmartEvCharging {
    settings: ChargingSettings,
    config: Config,
    smart_config: SmartConfig,
    started: Instant,
    mode: Mutex<Mode>,
    core: Mutex<Core>,
    /// A mode, plan or forecast arrived: decide now.
    wake: Notify,
    published: tokio::sync::Mutex<StateBook>,
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
        Entity::sensor("plan_shortfall", "Plan shortfall at the deadline")
            .unit("kWh")
            .device_class("energy")
            .icon("mdi:car-clock"),
        Entity::sensor("reason", "Last decision"),
    ]
}

/// States are published when they change, and again after this for HA's history.
const STATE_REFRESH: Duration = Duration::from_secs(600);

impl Service for SmartEvCharging {
    const NAME: &'static str = "smart-ev-charging";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const ABOUT: &'static str =
        "Charges the car from PV surplus (modes off, pv, min_pv, fast, smart).";
    type Settings = ChargingSettings;

    /// The meters and the wallbox are HA entities: nothing works without HA.
    fn uses_home_assistant(_settings: &Settings<ChargingSettings>) -> bool {
        true
    }

    fn new(ctx: &Context<ChargingSettings>) -> anyhow::Result<Self> {
        let settings = ctx.settings().clone();
        let configured = Mode::parse(&settings.smart_ev_mode)
            .map_err(|error| anyhow::anyhow!("SMART_EV_MODE: {error}"))?;
        settings.validate()?;
        let store = ctx.state_store::<ChargingState>();
        let mode = store.load().state.mode.unwrap_or(configured);
        let core = Core {
            meters: MeterCache::new(settings.trust()),
            controller: Controller::default(),
            smart: Smart::default(),
            reconciler: Reconciler::new(settings.smart_ev_retry_seconds),
            wallbox: Actual::default(),
            battery_held: false,
            safe_mode: false,
            last: None,
            problems: Vec::new(),
            ha_problem: None,
            wake_at: None,
        };
        Ok(Self {
            config: settings.config(),
            smart_config: settings.smart_config(),
            settings,
            started: Instant::now(),
            mode: Mutex::new(mode),
            core: Mutex::new(core),
            wake: Notify::new(),
            published: tokio::sync::Mutex::new(StateBook::new(STATE_REFRESH)),
            store,
        })
    }

    async fn run(self: Arc<Self>, ctx: Context<ChargingSettings>) -> anyhow::Result<()> {
        discovery::announce(ctx.mqtt(), Self::VERSION, &entities()).await?;
        self.listen_for_mode(&ctx).await?;
        self.listen_for_plan_and_forecast(&ctx).await?;

        let ha = ctx.home_assistant().clone();
        let mut changes = ha.subscribe_state_changes(
            self.settings
                .watched_entities(&ctx.common().safe_mode_entity),
            ctx.shutdown().clone(),
        );
        let mut subscribed = 0;
        let mut backstop = tokio::time::interval(Duration::from_secs(
            self.settings.smart_ev_cycle_seconds.max(1),
        ));
        backstop.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tracing::info!(mode = self.mode().as_str(), "service_started");
        loop {
            let wake_at = self.core().wake_at;
            tokio::select! {
                () = ctx.shutdown().cancelled() => return Ok(()),
                _ = backstop.tick() => self.refresh(&ctx, &ha).await,
                change = changes.next() => match change {
                    Some(change) => {
                        self.take(&ctx, &change);
                        // A burst (a meter device reports several entities) is one decision.
                        while let Some(change) = changes.try_next() {
                            self.take(&ctx, &change);
                        }
                    }
                    // The subscription ended (a refused token): the backstop carries on.
                    None => {
                        self.core().ha_problem = Some(format!(
                            "HA WebSocket: {}",
                            changes.last_error().unwrap_or_else(|| "subscription ended".into())
                        ));
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                },
                () = self.wake.notified() => {}
                () = sleep_until(wake_at) => {}
            }
            // Events missed while the WebSocket was away: read everything once.
            if changes.times_subscribed() > subscribed {
                subscribed = changes.times_subscribed();
                self.refresh(&ctx, &ha).await;
            }
            if let Err(error) = self.decide_and_apply(&ctx, &ha).await {
                tracing::error!(error = format!("{error:#}"), "charging_cycle_failed");
            }
        }
    }

    fn health(&self) -> Health {
        let core = self.core();
        let problems: Vec<&str> = core
            .ha_problem
            .iter()
            .chain(&core.problems)
            .map(String::as_str)
            .collect();
        let health = if problems.is_empty() {
            Health::online()
        } else {
            Health::degraded(problems.join("; "))
        };
        let last = core.last.clone();
        drop(core);
        health
            .with("mode", self.mode().as_str())
            .with("target_current_a", last.as_ref().and_then(|d| d.current_a))
            .with("reason", last.map(|d| d.reason))
    }

    /// `meters`: every configured entity readable, a number (a power where one is
    /// expected) and reported within the sensor timeout; the settings' own rules.
    fn diagnose_steps(settings: &Settings<ChargingSettings>) -> Vec<homelab::Step> {
        let ha = HomeAssistant::from_settings(&settings.common);
        let charging = settings.service.clone();
        vec![homelab::Step::new("meters", async move {
            if let Err(error) = charging.validate() {
                return homelab::Check::fail(format!("{error:#}"));
            }
            let mut found = Vec::new();
            for (entity, power) in charging.meter_entities() {
                let state = match ha.get_state(entity).await {
                    Ok(state) => state,
                    Err(error) => return homelab::Check::fail(format!("{entity}: {error}")),
                };
                let Some(reading) = state.reading() else {
                    return homelab::Check::fail(format!(
                        "{entity} is {:?}, not a number",
                        state.state
                    ));
                };
                if power && reading.power_watts().is_none() {
                    return homelab::Check::fail(format!(
                        "{entity} is in {:?}, not W or kW",
                        reading.unit
                    ));
                }
                let age = state.age_seconds().unwrap_or(0.0);
                if age > charging.smart_ev_sensor_timeout_seconds {
                    return homelab::Check::warn(format!(
                        "{entity} last reported {age:.0} s ago (limit {:.0} s): it counts as unavailable",
                        charging.smart_ev_sensor_timeout_seconds
                    ));
                }
                found.push(format!("{entity}={}", state.state));
            }
            homelab::Check::pass(found.join(", "))
        })]
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

impl SmartEvCharging {
    fn core(&self) -> std::sync::MutexGuard<'_, Core> {
        self.core.lock().expect("poisoned")
    }

    fn mode(&self) -> Mode {
        *self.mode.lock().expect("poisoned")
    }

    fn now_s(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    async fn listen_for_mode(
        self: &Arc<Self>,
        ctx: &Context<ChargingSettings>,
    ) -> anyhow::Result<()> {
        let service = self.clone();
        ctx.mqtt()
            .subscribe_text(
                &discovery::command_topic(Self::NAME, "mode"),
                move |message: Message<String>| {
                    let service = service.clone();
                    async move {
                        let mode = Mode::parse(&message.payload).map_err(anyhow::Error::msg)?;
                        *service.mode.lock().expect("poisoned") = mode;
                        service.wake.notify_one();
                        let saved = service
                            .store
                            .save_async(&ChargingState { mode: Some(mode) })
                            .await;
                        if let Err(error) = saved {
                            tracing::warn!(error = %error, "state_save_failed");
                        }
                        tracing::info!(mode = mode.as_str(), "mode_changed");
                        Ok(())
                    }
                },
            )
            .await?;
        Ok(())
    }

    async fn listen_for_plan_and_forecast(
        self: &Arc<Self>,
        ctx: &Context<ChargingSettings>,
    ) -> anyhow::Result<()> {
        let service = self.clone();
        ctx.subscribe(
            homelab::messages::ev_forecast::PLAN_TOPIC,
            move |message: Message<Plan>| {
                let service = service.clone();
                async move {
                    tracing::info!(
                        energy_needed_kwh = message.payload.energy_needed_kwh,
                        deadline = ?message.payload.deadline,
                        "plan_received"
                    );
                    service.core().smart.update_plan(
                        message.payload,
                        &service.smart_config,
                        chrono::Utc::now(),
                    );
                    service.wake.notify_one();
                    Ok(())
                }
            },
        )
        .await?;
        let service = self.clone();
        ctx.subscribe(
            homelab::messages::pv_forecast::UPDATED_TOPIC,
            move |message: Message<PvForecast>| {
                let service = service.clone();
                async move {
                    tracing::info!(stale = message.payload.stale, "pv_forecast_received");
                    service.core().smart.update_forecast(
                        message.payload,
                        &service.smart_config,
                        chrono::Utc::now(),
                    );
                    service.wake.notify_one();
                    Ok(())
                }
            },
        )
        .await?;
        Ok(())
    }

    /// Takes one entity's new state into the cache (no REST round trip).
    fn take(&self, ctx: &Context<ChargingSettings>, change: &StateChange) {
        let now_s = self.now_s();
        self.store_state(ctx, &change.entity_id, change.new_state.as_ref(), now_s);
    }

    /// The backstop: every watched entity over REST (their ages come from HA's
    /// `last_reported`, which has no event).
    async fn refresh(&self, ctx: &Context<ChargingSettings>, ha: &HomeAssistant) {
        let mut failure = None;
        for entity in self
            .settings
            .watched_entities(&ctx.common().safe_mode_entity)
        {
            match ha.get_state(&entity).await {
                Ok(state) => {
                    let age = state.age_seconds().unwrap_or(0.0).max(0.0);
                    self.store_state(ctx, &entity, Some(&state), self.now_s() - age);
                }
                Err(error) if error.status == Some(404) => {
                    self.store_state(ctx, &entity, None, self.now_s());
                }
                // HA away: the cached readings age until they are not believed.
                Err(error) => {
                    tracing::warn!(entity_id = %entity, error = %error, "ha_refresh_failed");
                    failure = Some(format!("HA unreachable: {error}"));
                }
            }
        }
        self.core().ha_problem = failure;
    }

    fn store_state(
        &self,
        ctx: &Context<ChargingSettings>,
        entity: &str,
        state: Option<&EntityState>,
        reported_s: f64,
    ) {
        let settings = &self.settings;
        let number = state.and_then(EntityState::reading).map(|r| r.value);
        let watts = state
            .and_then(EntityState::reading)
            .and_then(|r| r.power_watts());
        let sign = |positive: bool| if positive { 1.0 } else { -1.0 };
        let mut core = self.core();
        if entity == ctx.common().safe_mode_entity {
            let on = state.is_some_and(|s| s.state == "on");
            if on != core.safe_mode {
                tracing::warn!(safe_mode = on, "safe_mode_changed");
            }
            core.safe_mode = on;
        }
        if entity == settings.smart_ev_grid_power_entity {
            let value = watts.map(|w| w * sign(settings.smart_ev_grid_export_positive));
            core.meters.record(Meter::Grid, value, reported_s);
        }
        if entity == settings.smart_ev_battery_power_entity {
            let value = watts.map(|w| w * sign(settings.smart_ev_battery_charge_positive));
            core.meters.record(Meter::Battery, value, reported_s);
        }
        if entity == settings.smart_ev_battery_soc_entity {
            core.meters.record(Meter::BatterySoc, number, reported_s);
        }
        if entity == settings.smart_ev_ev_power_entity {
            core.meters.record(Meter::Ev, watts, reported_s);
        }
        if entity == settings.smart_ev_wallbox_current_entity {
            core.wallbox.current_a = number;
        }
        if entity == settings.smart_ev_phase_switch_entity {
            core.wallbox.phases = number;
        }
        if entity == settings.smart_ev_battery_hold_entity {
            core.wallbox.battery_hold = state.map(|s| s.state == "on");
        }
    }

    /// Decides on the cached readings and brings the wallbox there.
    fn decide(&self) -> Outcome {
        let now_s = self.now_s();
        let now = chrono::Utc::now();
        let mode = self.mode();
        let mut core = self.core();
        let assessed = core
            .meters
            .assess(self.settings.battery_configured(), now_s);
        core.smart.count(assessed.meters.ev_power_w, now);
        let verdict = (mode == Mode::Smart).then(|| core.smart.verdict(&self.smart_config, now));
        let mut decision = match &verdict {
            Some(Verdict::Grid { power_w, reason } | Verdict::TopUp { power_w, reason }) => {
                let hand_over = matches!(verdict, Some(Verdict::TopUp { .. }));
                let decision = core.controller.decide_at_least(
                    *power_w,
                    hand_over,
                    &assessed.meters,
                    &self.config,
                    now_s,
                );
                Decision {
                    reason: format!("{reason}; {}", decision.reason),
                    ..decision
                }
            }
            Some(Verdict::Surplus(why)) => {
                let decision =
                    core.controller
                        .decide(Mode::Pv, &assessed.meters, &self.config, now_s);
                Decision {
                    reason: format!("{why}; {}", decision.reason),
                    ..decision
                }
            }
            None => core
                .controller
                .decide(mode, &assessed.meters, &self.config, now_s),
        };
        if !assessed.problems.is_empty() {
            decision.reason = format!("{} [{}]", decision.reason, assessed.problems.join("; "));
        }
        let hold = battery_hold(
            &decision,
            mode,
            &assessed.meters,
            &self.config,
            core.battery_held,
        );
        core.battery_held = hold;
        let wanted = Setpoint {
            current_a: decision.current_a.unwrap_or(0.0),
            phases: self.config.phase_switching.then_some(decision.phases),
            battery_hold: (!self.settings.smart_ev_battery_hold_entity.is_empty()).then_some(hold),
        };
        let (wallbox, safe_mode) = (core.wallbox, core.safe_mode);
        let writes = core.reconciler.writes(wanted, wallbox, safe_mode, now_s);
        if safe_mode && !wanted.is_met_by(wallbox) {
            tracing::debug!(reason = %decision.reason, "safe_mode_no_write");
        }
        let smart_wake_s = core
            .smart
            .next_change()
            .map(|at| now_s + (at - now).num_milliseconds().max(0) as f64 / 1000.0);
        let wake_s = [
            decision.recheck_at_s,
            core.meters.next_verdict_s(now_s),
            core.reconciler.next_retry_s(),
            smart_wake_s,
        ]
        .into_iter()
        .flatten()
        .filter(|at| *at > now_s)
        .reduce(f64::min);
        core.wake_at = wake_s.map(|at| {
            // A hair after the timer, so that the decision sees it run out.
            self.started + Duration::from_secs_f64(at + 0.02)
        });
        core.last = Some(decision.clone());
        core.problems = assessed.problems.clone();
        let plan_active = mode == Mode::Smart && core.smart.plan().is_some();
        Outcome {
            trusted: assessed.problems.is_empty() && core.ha_problem.is_none(),
            writes,
            mode,
            surplus_w: smart_ev_charging::control::surplus_w(
                &assessed.meters,
                &self.config,
                decision.current_a.is_some(),
            ),
            remaining_kwh: plan_active.then(|| core.smart.remaining_kwh()),
            shortfall_kwh: plan_active.then(|| core.smart.shortfall_kwh(&self.smart_config, now)),
            meters: homelab::messages::smart_ev_charging::MetersNow {
                grid_export_w: assessed.meters.grid_export_w.map(f64::round),
                battery_charge_w: assessed.meters.battery_charge_w.map(f64::round),
                battery_soc: assessed.meters.battery_soc,
                ev_power_w: assessed.meters.ev_power_w.map(f64::round),
            },
            decision,
        }
    }

    async fn decide_and_apply(
        &self,
        ctx: &Context<ChargingSettings>,
        ha: &HomeAssistant,
    ) -> anyhow::Result<()> {
        let outcome = self.decide();
        for write in &outcome.writes {
            let settings = &self.settings;
            let (entity, service, value) = match *write {
                Write::BatteryHold(on) => (
                    &settings.smart_ev_battery_hold_entity,
                    if on { "turn_on" } else { "turn_off" },
                    f64::from(u8::from(on)),
                ),
                Write::Phases(phases) => {
                    (&settings.smart_ev_phase_switch_entity, "set_value", phases)
                }
                Write::Current(amps) => {
                    (&settings.smart_ev_wallbox_current_entity, "set_value", amps)
                }
            };
            let domain = entity.split('.').next().unwrap_or("number");
            let data = if service == "set_value" {
                serde_json::json!({"entity_id": entity, "value": value})
            } else {
                serde_json::json!({"entity_id": entity})
            };
            ha.call_service(domain, service, &data).await?;
            tracing::info!(
                entity_id = %entity,
                value,
                reason = %outcome.decision.reason,
                "wallbox_set"
            );
        }
        self.publish(ctx, &outcome).await?;
        // A cycle counts for the healthcheck only when it could trust its inputs.
        if outcome.trusted {
            ctx.touch_health();
        }
        Ok(())
    }

    /// Entity states and the status message, each only when it changed.
    async fn publish(
        &self,
        ctx: &Context<ChargingSettings>,
        outcome: &Outcome,
    ) -> anyhow::Result<()> {
        let decision = &outcome.decision;
        let states = [
            ("mode", outcome.mode.as_str().to_string()),
            ("surplus_power", discovery::number(outcome.surplus_w, 0)),
            (
                "target_current",
                discovery::number(Some(decision.current_a.unwrap_or(0.0)), 1),
            ),
            (
                "plan_shortfall",
                discovery::number(outcome.shortfall_kwh, 1),
            ),
            ("reason", decision.reason.clone()),
        ];
        let status = homelab::messages::smart_ev_charging::Status {
            mode: outcome.mode.as_str().to_string(),
            surplus_w: outcome.surplus_w.map(f64::round),
            target_current_a: decision.current_a,
            phases: decision.phases,
            reason: decision.reason.clone(),
            demand_kwh: outcome.remaining_kwh,
            shortfall_kwh: outcome.shortfall_kwh,
            meters: outcome.meters,
        };
        let mut book = self.published.lock().await;
        let now = Instant::now();
        for (object_id, value) in states {
            if book.due(object_id, &value, now) {
                if let Err(error) = discovery::publish_state(ctx.mqtt(), object_id, &value).await {
                    book.forget(object_id);
                    return Err(error.into());
                }
            }
        }
        let status_text = serde_json::to_string(&status)?;
        if book.due("status", &status_text, now) {
            // Retained: the dashboard shows the last decision whenever it starts.
            let published = ctx
                .mqtt()
                .publish_json(
                    homelab::messages::smart_ev_charging::STATUS_TOPIC,
                    &status,
                    homelab::QoS::AtLeastOnce,
                    true,
                )
                .await;
            if let Err(error) = published {
                book.forget("status");
                return Err(error.into());
            }
        }
        Ok(())
    }
}
