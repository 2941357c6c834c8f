//! A simulated day to replay the controller on: PV from a clear-sky curve with passing
//! clouds, a household load profile, a home battery and a car that draws what it is
//! told. Deterministic (seeded), minute steps.

use crate::control::{Config, Controller, Meters, Mode};

/// What a day of charging did.
#[derive(Clone, Debug)]
pub struct DayFigures {
    /// PV beyond the house load, kWh.
    pub surplus_kwh: f64,
    /// Of that, what went into the car, kWh.
    pub car_from_pv_kwh: f64,
    /// Grid import while the car charged (up to the car's power), kWh.
    pub import_caused_kwh: f64,
    /// Charging starts and stops.
    pub switches: u32,
    pub car_total_kwh: f64,
}

impl DayFigures {
    pub fn share_into_car(&self) -> f64 {
        if self.surplus_kwh > 0.0 {
            self.car_from_pv_kwh / self.surplus_kwh
        } else {
            0.0
        }
    }
}

/// xorshift: small, deterministic, good enough for clouds.
struct Random(u64);

impl Random {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % 1_000_000) as f64 / 1_000_000.0
    }
}

/// PV and load for each minute of the day (W), for `kwp` and a cloudiness 0..1.
pub fn day_profile(kwp: f64, cloudiness: f64, seed: u64) -> Vec<(f64, f64)> {
    let mut random = Random(seed.max(1));
    let mut cloud_factor = 1.0;
    let mut cloud_left = 0;
    (0..1440)
        .map(|minute| {
            let hour = minute as f64 / 60.0;
            let clear = if (6.0..20.0).contains(&hour) {
                kwp * 1000.0 * (std::f64::consts::PI * (hour - 6.0) / 14.0).sin().powf(1.5) * 0.85
            } else {
                0.0
            };
            if cloud_left == 0 {
                cloud_left = 1 + (random.next() * 9.0) as u32;
                cloud_factor = if random.next() < cloudiness {
                    0.2 + random.next() * 0.4
                } else {
                    1.0
                };
            }
            cloud_left -= 1;
            let mut load = 300.0 + random.next() * 100.0;
            if (7.0..8.0).contains(&hour) {
                load += 800.0;
            }
            if (12.0..13.0).contains(&hour) {
                load += 1500.0;
            }
            if (18.0..21.0).contains(&hour) {
                load += 1200.0;
            }
            (clear * cloud_factor, load)
        })
        .collect()
}

/// Replays `profile` with a 10 kWh / 5 kW battery starting at `battery_soc` %.
pub fn simulate(
    profile: &[(f64, f64)],
    mode: Mode,
    config: &Config,
    battery_soc: f64,
) -> DayFigures {
    let capacity_wh = 10_000.0;
    let battery_limit_w = 5_000.0;
    let mut stored_wh = capacity_wh * battery_soc / 100.0;
    let mut controller = Controller::default();
    let mut ev_w: f64 = 0.0;
    let mut last_meters = Meters::default();
    let mut figures = DayFigures {
        surplus_kwh: 0.0,
        car_from_pv_kwh: 0.0,
        import_caused_kwh: 0.0,
        switches: 0,
        car_total_kwh: 0.0,
    };
    let hours_per_step = 1.0 / 60.0;
    for (minute, &(pv, load)) in profile.iter().enumerate() {
        let decision = controller.decide(mode, &last_meters, config, minute as f64 * 60.0);
        let was_charging = ev_w > 0.0;
        ev_w = decision
            .current_a
            .map_or(0.0, |amps| amps * decision.phases * config.voltage_v);
        if was_charging != (ev_w > 0.0) {
            figures.switches += 1;
        }
        // The battery takes what is left after house and car, and covers what is missing.
        let net = pv - load - ev_w;
        let battery_w = if net > 0.0 {
            net.min(battery_limit_w)
                .min((capacity_wh - stored_wh) / hours_per_step)
        } else {
            -((-net).min(battery_limit_w).min(stored_wh / hours_per_step))
        };
        stored_wh += battery_w * hours_per_step;
        let grid_export = net - battery_w;
        let pv_beyond_load = (pv - load).max(0.0);
        figures.surplus_kwh += pv_beyond_load * hours_per_step / 1000.0;
        figures.car_from_pv_kwh += ev_w.min(pv_beyond_load) * hours_per_step / 1000.0;
        figures.car_total_kwh += ev_w * hours_per_step / 1000.0;
        if grid_export < 0.0 {
            figures.import_caused_kwh += ev_w.min(-grid_export) * hours_per_step / 1000.0;
        }
        let now_s = minute as f64 * 60.0;
        last_meters = Meters {
            grid_export_w: Some(grid_export),
            battery_charge_w: Some(battery_w),
            battery_soc: Some(100.0 * stored_wh / capacity_wh),
            ev_power_w: Some(ev_w),
            grid_reported_s: Some(now_s),
            ev_changed_s: Some(now_s),
        };
    }
    figures
}

/// Something that sets the wallbox from the meters: ours, or the evcc reference.
pub trait Charger {
    /// Called at every meter step (`now_s`); returns (amps or not charging, phases).
    fn step(&mut self, meters: &Meters, now_s: f64) -> (Option<f64>, f64);
}

/// Ours, deciding on every meter change (event-driven).
pub struct Ours {
    pub controller: Controller,
    pub mode: Mode,
    pub config: Config,
}

impl Charger for Ours {
    fn step(&mut self, meters: &Meters, now_s: f64) -> (Option<f64>, f64) {
        let decision = self
            .controller
            .decide(self.mode, meters, &self.config, now_s);
        (decision.current_a, decision.phases)
    }
}

/// A reference implementation of evcc's documented pv rules, written from its docs
/// (not its code): every 30 s the current moves by the grid power over volts × phases,
/// within 6–16 A; charging starts after the surplus carried the minimum for 1 min and
/// stops after it was short for 3 min (meanwhile the minimum). Three phases, no
/// residual power, the home battery's charging counted as surplus (evcc's default).
pub struct EvccReference {
    pub interval_s: f64,
    pub enable_s: f64,
    pub disable_s: f64,
    current: Option<f64>,
    next_cycle_s: f64,
    enable_since: Option<f64>,
    disable_since: Option<f64>,
}

impl Default for EvccReference {
    fn default() -> Self {
        Self {
            interval_s: 30.0,
            enable_s: 60.0,
            disable_s: 180.0,
            current: None,
            next_cycle_s: 0.0,
            enable_since: None,
            disable_since: None,
        }
    }
}

impl Charger for EvccReference {
    fn step(&mut self, meters: &Meters, now_s: f64) -> (Option<f64>, f64) {
        const VOLTS_3P: f64 = 3.0 * 230.0;
        if now_s < self.next_cycle_s {
            return (self.current, 3.0);
        }
        self.next_cycle_s = now_s + self.interval_s;
        let export = meters.grid_export_w.unwrap_or(0.0) + meters.battery_charge_w.unwrap_or(0.0);
        let charging_a = meters.ev_power_w.unwrap_or(0.0) / VOLTS_3P;
        let target = charging_a + export / VOLTS_3P;
        match self.current {
            None => {
                self.disable_since = None;
                if target >= 6.0 {
                    let since = *self.enable_since.get_or_insert(now_s);
                    if now_s - since >= self.enable_s {
                        self.enable_since = None;
                        self.current = Some(target.floor().clamp(6.0, 16.0));
                    }
                } else {
                    self.enable_since = None;
                }
            }
            Some(_) => {
                self.enable_since = None;
                if target < 6.0 {
                    let since = *self.disable_since.get_or_insert(now_s);
                    self.current = if now_s - since >= self.disable_s {
                        self.disable_since = None;
                        None
                    } else {
                        Some(6.0)
                    };
                } else {
                    self.disable_since = None;
                    self.current = Some(target.floor().clamp(6.0, 16.0));
                }
            }
        }
        (self.current, 3.0)
    }
}

/// What a replayed day did to the car and the grid.
#[derive(Clone, Debug, Default)]
pub struct Replay {
    pub car_kwh: f64,
    /// Of that, covered by PV beyond the house load.
    pub car_pv_kwh: f64,
    /// Grid import while the car charged, up to the car's power.
    pub import_kwh: f64,
    pub on_off: u32,
    pub phase_switches: u32,
    /// What the car had got (kWh) at each stop.
    pub stops_at_kwh: Vec<f64>,
}

impl Replay {
    pub fn pv_share(&self) -> f64 {
        if self.car_kwh > 0.0 {
            self.car_pv_kwh / self.car_kwh
        } else {
            0.0
        }
    }
}

/// Replays `profile` (per minute) in `step_s` steps; the car draws what it is told
/// at once. `battery_kwh` 0 = no home battery.
pub fn replay(
    profile: &[(f64, f64)],
    charger: &mut dyn Charger,
    step_s: f64,
    battery_kwh: f64,
    battery_soc: f64,
) -> Replay {
    let capacity_wh = battery_kwh * 1000.0;
    let mut stored_wh = capacity_wh * battery_soc / 100.0;
    let hours = step_s / 3600.0;
    let mut figures = Replay::default();
    let mut meters = Meters::default();
    let (mut charging, mut phases_then) = (false, 3.0);
    let steps = (profile.len() as f64 * 60.0 / step_s) as usize;
    for i in 0..steps {
        let now_s = i as f64 * step_s;
        let (pv, load) = profile[(now_s / 60.0) as usize];
        let (amps, phases) = charger.step(&meters, now_s);
        let ev_w = amps.map_or(0.0, |a| a * phases * 230.0);
        if charging != (ev_w > 0.0) {
            figures.on_off += 1;
            charging = ev_w > 0.0;
            if !charging {
                figures.stops_at_kwh.push(figures.car_kwh);
            }
        }
        if charging && phases != phases_then {
            figures.phase_switches += 1;
        }
        if charging {
            phases_then = phases;
        }
        let net = pv - load - ev_w;
        let battery_w = if capacity_wh <= 0.0 {
            0.0
        } else if net > 0.0 {
            net.min(5000.0).min((capacity_wh - stored_wh) / hours)
        } else {
            -((-net).min(5000.0).min(stored_wh / hours))
        };
        stored_wh += battery_w * hours;
        let export = net - battery_w;
        figures.car_kwh += ev_w * hours / 1000.0;
        figures.car_pv_kwh += ev_w.min((pv - load).max(0.0)) * hours / 1000.0;
        if export < 0.0 {
            figures.import_kwh += ev_w.min(-export) * hours / 1000.0;
        }
        meters = Meters {
            grid_export_w: Some(export),
            battery_charge_w: Some(battery_w),
            battery_soc: (capacity_wh > 0.0).then(|| 100.0 * stored_wh / capacity_wh),
            ev_power_w: Some(ev_w),
            grid_reported_s: Some(now_s),
            ev_changed_s: Some(now_s),
        };
    }
    figures
}

/// Smart mode on a replayed day: the plan module decides grid or surplus, the
/// controller the current. The day starts at `midnight`.
pub struct SmartCharger {
    pub smart: crate::plan::Smart,
    pub smart_config: crate::plan::SmartConfig,
    pub controller: Controller,
    pub config: Config,
    pub midnight: chrono::DateTime<chrono::Utc>,
}

impl Charger for SmartCharger {
    fn step(&mut self, meters: &Meters, now_s: f64) -> (Option<f64>, f64) {
        let now = self.midnight + chrono::Duration::milliseconds((now_s * 1000.0) as i64);
        self.smart.count(meters.ev_power_w, now);
        let decision = match self.smart.verdict(&self.smart_config, now) {
            crate::plan::Verdict::Grid { power_w, .. } => {
                self.controller
                    .decide_at_least(power_w, false, meters, &self.config, now_s)
            }
            crate::plan::Verdict::TopUp { power_w, .. } => {
                self.controller
                    .decide_at_least(power_w, true, meters, &self.config, now_s)
            }

            crate::plan::Verdict::Surplus(_) => {
                self.controller
                    .decide(Mode::Pv, meters, &self.config, now_s)
            }
        };
        (decision.current_a, decision.phases)
    }
}

/// The least grid energy any controller could need for `energy_kwh` by `deadline_s`
/// with perfect knowledge of the day, charging at 0 or between `min_w` and `max_w`:
/// every minute whose surplus carries the minimum gives the car all of it (up to
/// `max_w`); what is still missing comes from minutes charged at the minimum with
/// the grid topping up, the sunniest first (they cost the least grid per kWh), and
/// last from the grid alone.
pub fn perfect_grid_kwh(
    profile: &[(f64, f64)],
    energy_kwh: f64,
    deadline_s: f64,
    min_w: f64,
    max_w: f64,
) -> f64 {
    let minutes: Vec<f64> = profile
        .iter()
        .take((deadline_s / 60.0) as usize)
        .map(|&(pv, load)| (pv - load).max(0.0))
        .collect();
    let free_kwh: f64 = minutes
        .iter()
        .filter(|sun| **sun >= min_w)
        .map(|sun| sun.min(max_w) / 60_000.0)
        .sum();
    let mut missing = (energy_kwh - free_kwh).max(0.0);
    let mut topped_up: Vec<f64> = minutes.into_iter().filter(|sun| *sun < min_w).collect();
    topped_up.sort_by(|a, b| b.total_cmp(a));
    let mut grid_kwh = 0.0;
    for sun in topped_up {
        if missing <= 0.0 {
            break;
        }
        let share = (missing / (min_w / 60_000.0)).min(1.0);
        grid_kwh += share * (min_w - sun) / 60_000.0;
        missing -= share * min_w / 60_000.0;
    }
    grid_kwh + missing.max(0.0)
}

/// pv-forecast's message for `today`'s hours (a perfect forecast in the replays).
pub fn forecast_message(today: Vec<crate::plan::HourEnergy>) -> crate::plan::PvForecast {
    let generated_at = today
        .first()
        .map_or_else(chrono::Utc::now, |hour| hour.start);
    let today_kwh = today.iter().map(|hour| hour.kwh).sum();
    crate::plan::PvForecast {
        generated_at,
        today_date: generated_at.date_naive(),
        today,
        tomorrow: Vec::new(),
        today_kwh,
        today_remaining_kwh: today_kwh,
        tomorrow_kwh: 0.0,
        model: "replay".into(),
        hold_out_error: None,
        stale: false,
        today_actual: Vec::new(),
        pv_now_w: None,
    }
}

/// ev-forecast's plan for `energy_kwh` by `deadline`, without trips.
pub fn plan_message(energy_kwh: f64, deadline: chrono::DateTime<chrono::Utc>) -> crate::plan::Plan {
    crate::plan::Plan {
        energy_needed_kwh: energy_kwh,
        deadline: Some(deadline),
        urgency: homelab::messages::ev_forecast::Urgency::Medium,
        trips: Vec::new(),
        ev_soc: None,
        shortfall_kwh: 0.0,
        warning: None,
    }
}

/// pv-forecast's hourly kWh for a profile (a perfect forecast), from `midnight`.
pub fn hourly_forecast(
    profile: &[(f64, f64)],
    midnight: chrono::DateTime<chrono::Utc>,
) -> crate::plan::PvForecast {
    forecast_message(
        profile
            .chunks(60)
            .enumerate()
            .map(|(hour, minutes)| crate::plan::HourEnergy {
                start: midnight + chrono::Duration::hours(hour as i64),
                kwh: minutes.iter().map(|(pv, _)| pv / 60.0 / 1000.0).sum(),
                p10_kwh: None,
                p90_kwh: None,
            })
            .collect(),
    )
}
