//! The charging decision, free of I/O (evcc's loadpoint idea): given what the meters
//! say now, what current should the wallbox get? Times are seconds on any monotonic
//! clock, so tests can replay a whole day in milliseconds.

use serde::{Deserialize, Serialize};

/// The charging modes (as in evcc and the Python system).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    Off,
    /// Surplus only.
    Pv,
    /// Minimum current always, more with surplus.
    MinPv,
    /// Maximum current.
    Fast,
    /// Meet ev-forecast's plan: PV first, the grid only as late as the deadline needs.
    Smart,
}

impl Mode {
    pub const ALL: [&'static str; 5] = ["off", "pv", "min_pv", "fast", "smart"];

    pub fn parse(text: &str) -> Result<Self, String> {
        match text.trim() {
            "off" => Ok(Self::Off),
            "pv" => Ok(Self::Pv),
            "min_pv" => Ok(Self::MinPv),
            "fast" => Ok(Self::Fast),
            "smart" => Ok(Self::Smart),
            other => Err(format!(
                "unknown charging mode {other:?}; expected one of {}",
                Self::ALL.join(", ")
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::Pv => "pv",
            Self::MinPv => "min_pv",
            Self::Fast => "fast",
            Self::Smart => "smart",
        }
    }
}

/// Whose turn it is when the sun is short: the home battery or the car.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum BatteryPriority {
    /// The battery's charging power is not surplus until it reaches this SoC (%).
    HomeFirstUntil(f64),
    /// What the battery charges with is surplus for the car.
    CarFirst,
}

/// The wallbox and the rules.
#[derive(Clone, Debug)]
pub struct Config {
    pub min_current_a: f64,
    pub max_current_a: f64,
    pub current_step_a: f64,
    pub phases: f64,
    pub voltage_v: f64,
    /// Kept back from the surplus, so that a cloud edge does not import at once.
    pub grid_reserve_w: f64,
    pub battery_priority: BatteryPriority,
    /// Surplus must allow the minimum current this long before charging starts.
    pub enable_delay_s: f64,
    /// Surplus must be short this long before charging stops.
    pub disable_delay_s: f64,
    /// At most one current change per this interval (stops are never delayed by it).
    pub min_command_interval_s: f64,
    /// The wallbox can switch between one phase and `phases`.
    pub phase_switching: bool,
    /// A phase switch waits until the need for it has lasted this long.
    pub phase_switch_delay_s: f64,
    /// No further phase switch this long after one (contactors and cars need rest).
    pub phase_grace_s: f64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            min_current_a: 6.0,
            max_current_a: 16.0,
            current_step_a: 1.0,
            phases: 3.0,
            voltage_v: 230.0,
            grid_reserve_w: 100.0,
            battery_priority: BatteryPriority::HomeFirstUntil(80.0),
            enable_delay_s: 60.0,
            disable_delay_s: 180.0,
            min_command_interval_s: 30.0,
            phase_switching: false,
            phase_switch_delay_s: 120.0,
            phase_grace_s: 300.0,
        }
    }
}

/// What the meters say now. `None` means unavailable or stale.
#[derive(Clone, Copy, Debug, Default)]
pub struct Meters {
    /// Positive while exporting (normalised from the configured sign convention).
    pub grid_export_w: Option<f64>,
    /// Positive while the home battery charges.
    pub battery_charge_w: Option<f64>,
    pub battery_soc: Option<f64>,
    /// What the car draws now.
    pub ev_power_w: Option<f64>,
    /// What ev-forecast's plan still asks for (smart mode).
    pub demand: Option<Demand>,
}

/// Charging time is stretched by this (current taper near full, charger losses).
const SMART_MARGIN: f64 = 1.2;
/// And started this much earlier still, in hours.
const SMART_BUFFER_H: f64 = 0.5;

/// Energy the car still needs, and the hours until it leaves.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Demand {
    pub energy_kwh: f64,
    pub hours_left: f64,
}

impl Demand {
    /// Hours at full power (all phases, maximum current) to deliver the energy, with margin.
    pub fn hours_needed(&self, config: &Config) -> f64 {
        let kw = config.max_current_a * config.phases * config.voltage_v / 1000.0;
        self.energy_kwh / kw.max(0.1) * SMART_MARGIN + SMART_BUFFER_H
    }

    /// Whether waiting for the sun any longer would miss the deadline.
    pub fn must_charge_now(&self, config: &Config) -> bool {
        self.energy_kwh > 0.0 && self.hours_left <= self.hours_needed(config)
    }
}

/// Power the car may use: export + what it draws now ± battery − reserve.
/// `None` when a meter it needs is unavailable.
pub fn surplus_w(meters: &Meters, config: &Config) -> Option<f64> {
    let export = meters.grid_export_w?;
    let ev = meters.ev_power_w.unwrap_or(0.0).max(0.0);
    let battery = meters.battery_charge_w.unwrap_or(0.0);
    // What the battery charges with is the car's when the priority says so; what a
    // discharging battery gives is never surplus (it would empty the battery into the car).
    let charge_is_surplus = match config.battery_priority {
        BatteryPriority::CarFirst => true,
        BatteryPriority::HomeFirstUntil(soc) => meters.battery_soc.is_some_and(|now| now >= soc),
    };
    let battery_share = if charge_is_surplus {
        battery
    } else {
        battery.min(0.0)
    };
    Some(export + ev + battery_share - config.grid_reserve_w)
}

/// The decision and why, for the status entity and the logs.
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    /// `None` = not charging.
    pub current_a: Option<f64>,
    pub reason: String,
    /// Whether the wallbox must be told (a change, allowed by the command interval).
    pub send: bool,
    /// Phases to charge with.
    pub phases: f64,
    /// Whether the phases changed with this decision (switch them before the current).
    pub phases_changed: bool,
}

/// Remembers what was commanded and since when a condition holds (hysteresis).
#[derive(Clone, Debug, Default)]
pub struct Controller {
    current_a: Option<f64>,
    last_command_s: Option<f64>,
    surplus_enough_since: Option<f64>,
    surplus_short_since: Option<f64>,
    /// `None` until a switch: all the configured phases.
    phases: Option<f64>,
    phases_wanted_since: Option<(f64, f64)>,
    last_phase_switch_s: Option<f64>,
}

impl Controller {
    pub fn current_a(&self) -> Option<f64> {
        self.current_a
    }

    pub fn phases(&self, config: &Config) -> f64 {
        self.phases.unwrap_or(config.phases)
    }

    fn watts_per_amp(&self, config: &Config) -> f64 {
        self.phases(config) * config.voltage_v
    }

    /// Moves to one phase when the surplus cannot carry the minimum on all phases but
    /// can on one, and back when it can again — after the delay, never within the grace.
    fn consider_phases(&mut self, surplus: f64, config: &Config, now_s: f64) -> bool {
        if !config.phase_switching {
            return false;
        }
        let now_phases = self.phases(config);
        let all_minimum = config.min_current_a * config.phases * config.voltage_v;
        let one_minimum = config.min_current_a * config.voltage_v;
        let wanted = if surplus >= all_minimum {
            config.phases
        } else if surplus >= one_minimum {
            1.0
        } else {
            now_phases
        };
        if wanted == now_phases {
            self.phases_wanted_since = None;
            return false;
        }
        if self
            .last_phase_switch_s
            .is_some_and(|last| now_s - last < config.phase_grace_s)
        {
            return false;
        }
        let since = match self.phases_wanted_since {
            Some((phases, since)) if phases == wanted => since,
            _ => {
                self.phases_wanted_since = Some((wanted, now_s));
                now_s
            }
        };
        if now_s - since < config.phase_switch_delay_s {
            return false;
        }
        self.phases = Some(wanted);
        self.last_phase_switch_s = Some(now_s);
        self.phases_wanted_since = None;
        true
    }

    fn stepped(&self, config: &Config, amps: f64) -> f64 {
        let stepped = (amps / config.current_step_a).floor() * config.current_step_a;
        stepped.clamp(config.min_current_a, config.max_current_a)
    }

    /// Decides for `mode` at time `now_s`.
    pub fn decide(&mut self, mode: Mode, meters: &Meters, config: &Config, now_s: f64) -> Decision {
        if mode == Mode::Smart {
            return self.decide_smart(meters, config, now_s);
        }
        let surplus = surplus_w(meters, config);
        let phases_changed = match (mode, surplus) {
            (Mode::Pv | Mode::MinPv, Some(surplus)) => self.consider_phases(surplus, config, now_s),
            (Mode::Fast, _) if config.phase_switching && self.phases(config) != config.phases => {
                self.phases = Some(config.phases);
                self.last_phase_switch_s = Some(now_s);
                true
            }
            _ => false,
        };
        let (target, reason) = match (mode, surplus) {
            (Mode::Off, _) => (None, "mode off".to_string()),
            (Mode::Fast, _) => (
                Some(config.max_current_a),
                "mode fast: maximum current".to_string(),
            ),
            (Mode::Pv, None) => (
                None,
                "meters unavailable: pv stops charging (safe action)".to_string(),
            ),
            (Mode::MinPv, None) => (
                Some(config.min_current_a),
                "meters unavailable: min_pv keeps the minimum".to_string(),
            ),
            (Mode::MinPv, Some(surplus)) => {
                let amps = self.stepped(config, surplus / self.watts_per_amp(config));
                (
                    Some(amps),
                    format!("min_pv: surplus {surplus:.0} W → {amps} A"),
                )
            }
            (Mode::Pv | Mode::Smart, Some(surplus)) => self.pv_target(surplus, config, now_s),
            (Mode::Smart, None) => (
                None,
                "meters unavailable: smart stops charging until they are back".to_string(),
            ),
        };
        if mode != Mode::Pv || surplus.is_none() {
            self.surplus_enough_since = None;
            self.surplus_short_since = None;
        }
        let mut decision = self.apply(target, reason, config, now_s);
        decision.phases = self.phases(config);
        decision.phases_changed = phases_changed;
        if phases_changed {
            decision.send = decision.current_a.is_some();
            decision.reason = format!("{} ({} phase(s))", decision.reason, decision.phases);
        }
        decision
    }

    /// Smart: like `pv` while the deadline allows, then the maximum until the plan is met.
    fn decide_smart(&mut self, meters: &Meters, config: &Config, now_s: f64) -> Decision {
        let (mode, why) = match meters.demand {
            Some(demand) if demand.must_charge_now(config) => (
                Mode::Fast,
                format!(
                    "smart: {:.1} kWh needed in {:.1} h (takes {:.1} h) → grid allowed",
                    demand.energy_kwh,
                    demand.hours_left,
                    demand.hours_needed(config)
                ),
            ),
            Some(demand) if demand.energy_kwh > 0.0 => (
                Mode::Pv,
                format!(
                    "smart: {:.1} kWh needed in {:.1} h, PV only for {:.1} h more",
                    demand.energy_kwh,
                    demand.hours_left,
                    demand.hours_left - demand.hours_needed(config)
                ),
            ),
            _ => (Mode::Pv, "smart: no energy planned, PV only".to_string()),
        };
        let mut decision = self.decide(mode, meters, config, now_s);
        decision.reason = format!("{why}; {}", decision.reason);
        decision
    }

    fn pv_target(&mut self, surplus: f64, config: &Config, now_s: f64) -> (Option<f64>, String) {
        let minimum_w = config.min_current_a * self.watts_per_amp(config);
        let enough = surplus >= minimum_w;
        if enough {
            self.surplus_short_since = None;
            self.surplus_enough_since.get_or_insert(now_s);
        } else {
            self.surplus_enough_since = None;
            self.surplus_short_since.get_or_insert(now_s);
        }
        let amps = self.stepped(config, surplus / self.watts_per_amp(config));
        match (self.current_a.is_some(), enough) {
            (true, true) => (Some(amps), format!("pv: surplus {surplus:.0} W → {amps} A")),
            (false, true) => {
                let waited = now_s - self.surplus_enough_since.unwrap_or(now_s);
                if waited >= config.enable_delay_s {
                    (
                        Some(amps),
                        format!("pv: surplus {surplus:.0} W for {waited:.0} s → start at {amps} A"),
                    )
                } else {
                    (
                        None,
                        format!(
                            "pv: surplus {surplus:.0} W, waiting {:.0} s more to start",
                            config.enable_delay_s - waited
                        ),
                    )
                }
            }
            (true, false) => {
                let short = now_s - self.surplus_short_since.unwrap_or(now_s);
                if short >= config.disable_delay_s {
                    (None, format!("pv: surplus {surplus:.0} W below {minimum_w:.0} W for {short:.0} s → stop"))
                } else {
                    (
                        Some(config.min_current_a),
                        format!(
                            "pv: surplus {surplus:.0} W short, holding the minimum {:.0} s more",
                            config.disable_delay_s - short
                        ),
                    )
                }
            }
            (false, false) => (
                None,
                format!("pv: surplus {surplus:.0} W below the {minimum_w:.0} W minimum"),
            ),
        }
    }

    fn apply(
        &mut self,
        target: Option<f64>,
        reason: String,
        config: &Config,
        now_s: f64,
    ) -> Decision {
        if target == self.current_a {
            return Decision {
                current_a: target,
                reason,
                send: false,
                phases: 0.0,
                phases_changed: false,
            };
        }
        let stopping = target.is_none();
        let too_soon = self
            .last_command_s
            .is_some_and(|last| now_s - last < config.min_command_interval_s);
        if too_soon && !stopping {
            return Decision {
                current_a: self.current_a,
                reason: format!(
                    "{reason} (held: last change under {:.0} s ago)",
                    config.min_command_interval_s
                ),
                send: false,
                phases: 0.0,
                phases_changed: false,
            };
        }
        self.current_a = target;
        self.last_command_s = Some(now_s);
        Decision {
            current_a: target,
            reason,
            send: true,
            phases: 0.0,
            phases_changed: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meters(export: f64, ev: f64) -> Meters {
        Meters {
            grid_export_w: Some(export),
            battery_charge_w: Some(0.0),
            battery_soc: Some(50.0),
            ev_power_w: Some(ev),
            demand: None,
        }
    }

    fn config() -> Config {
        Config {
            min_command_interval_s: 0.0,
            ..Config::default()
        }
    }

    #[test]
    fn surplus_counts_export_the_car_and_the_battery_by_priority() {
        let home_first = config();
        let charging = Meters {
            grid_export_w: Some(1000.0),
            battery_charge_w: Some(2000.0),
            battery_soc: Some(50.0),
            ev_power_w: Some(4000.0),
            demand: None,
        };
        assert_eq!(
            surplus_w(&charging, &home_first),
            Some(1000.0 + 4000.0 - 100.0),
            "battery below 80 % keeps its power"
        );
        let full = Meters {
            battery_soc: Some(85.0),
            ..charging
        };
        assert_eq!(
            surplus_w(&full, &home_first),
            Some(1000.0 + 4000.0 + 2000.0 - 100.0)
        );
        let car_first = Config {
            battery_priority: BatteryPriority::CarFirst,
            ..config()
        };
        assert_eq!(surplus_w(&charging, &car_first), Some(6900.0));
        let discharging = Meters {
            battery_charge_w: Some(-1500.0),
            ..charging
        };
        assert_eq!(
            surplus_w(&discharging, &car_first),
            Some(3400.0),
            "what a discharging battery gives is taken off"
        );
        assert_eq!(surplus_w(&discharging, &home_first), Some(3400.0));
        let full_discharging = Meters {
            battery_soc: Some(95.0),
            ..discharging
        };
        assert_eq!(
            surplus_w(&full_discharging, &home_first),
            Some(3400.0),
            "also above the priority SoC"
        );
        assert_eq!(
            surplus_w(
                &Meters {
                    grid_export_w: None,
                    ..charging
                },
                &home_first
            ),
            None
        );
    }

    #[test]
    fn pv_starts_after_the_enable_delay_and_follows_the_surplus() {
        let config = config();
        let mut controller = Controller::default();
        // 5 kW export: 5000 - 100 = 4900 W / 690 W per A = 7.1 → 7 A, but only after 60 s.
        assert_eq!(
            controller
                .decide(Mode::Pv, &meters(5000.0, 0.0), &config, 0.0)
                .current_a,
            None
        );
        assert_eq!(
            controller
                .decide(Mode::Pv, &meters(5000.0, 0.0), &config, 59.0)
                .current_a,
            None
        );
        let start = controller.decide(Mode::Pv, &meters(5000.0, 0.0), &config, 60.0);
        assert_eq!((start.current_a, start.send), (Some(7.0), true));
        // The car now draws 7 A × 690 W; export drops accordingly, surplus stays.
        let steady = controller.decide(Mode::Pv, &meters(5000.0 - 4830.0, 4830.0), &config, 70.0);
        assert_eq!((steady.current_a, steady.send), (Some(7.0), false));
        // More sun: 10 kW surplus → 14 A; never above 16 A.
        assert_eq!(
            controller
                .decide(Mode::Pv, &meters(5000.0, 4830.0), &config, 80.0)
                .current_a,
            Some(14.0)
        );
        assert_eq!(
            controller
                .decide(Mode::Pv, &meters(20000.0, 4830.0), &config, 90.0)
                .current_a,
            Some(16.0)
        );
    }

    #[test]
    fn a_passing_cloud_does_not_stop_pv_charging() {
        let config = config();
        let mut controller = Controller::default();
        controller.decide(Mode::Pv, &meters(6000.0, 0.0), &config, 0.0);
        controller.decide(Mode::Pv, &meters(6000.0, 0.0), &config, 60.0);
        assert!(controller.current_a().is_some());
        // A 2-minute cloud: surplus short, the minimum is held, no stop.
        for t in [70.0, 130.0, 189.0] {
            let held = controller.decide(Mode::Pv, &meters(-500.0, 4140.0), &config, t);
            assert_eq!(held.current_a, Some(6.0), "at {t} s: {}", held.reason);
        }
        assert!(controller
            .decide(Mode::Pv, &meters(2000.0, 4140.0), &config, 200.0)
            .current_a
            .is_some());
        // A long shortage stops after the disable delay.
        controller.decide(Mode::Pv, &meters(-3000.0, 4140.0), &config, 300.0);
        let stopped = controller.decide(Mode::Pv, &meters(-3000.0, 4140.0), &config, 480.0);
        assert_eq!(
            (stopped.current_a, stopped.send),
            (None, true),
            "{}",
            stopped.reason
        );
    }

    #[test]
    fn modes_and_their_safe_actions_when_meters_fail() {
        let config = config();
        let dead = Meters::default();
        let mut controller = Controller::default();
        assert_eq!(
            controller.decide(Mode::Fast, &dead, &config, 0.0).current_a,
            Some(16.0)
        );
        assert_eq!(
            controller
                .decide(Mode::MinPv, &dead, &config, 1.0)
                .current_a,
            Some(6.0)
        );
        assert_eq!(
            controller.decide(Mode::Pv, &dead, &config, 2.0).current_a,
            None
        );
        assert_eq!(
            controller
                .decide(Mode::Off, &meters(9000.0, 0.0), &config, 3.0)
                .current_a,
            None
        );
        assert_eq!(
            controller
                .decide(Mode::MinPv, &meters(0.0, 0.0), &config, 4.0)
                .current_a,
            Some(6.0)
        );
        assert_eq!(
            controller
                .decide(Mode::MinPv, &meters(8000.0, 4140.0), &config, 5.0)
                .current_a,
            Some(16.0)
        );
    }

    #[test]
    fn current_changes_are_rate_limited_but_stops_are_not() {
        let config = Config {
            min_command_interval_s: 30.0,
            ..Config::default()
        };
        let mut controller = Controller::default();
        assert!(
            controller
                .decide(Mode::Fast, &meters(0.0, 0.0), &config, 0.0)
                .send
        );
        let held = controller.decide(Mode::MinPv, &meters(0.0, 0.0), &config, 10.0);
        assert_eq!(
            (held.current_a, held.send),
            (Some(16.0), false),
            "{}",
            held.reason
        );
        assert_eq!(
            controller
                .decide(Mode::MinPv, &meters(0.0, 0.0), &config, 31.0)
                .current_a,
            Some(6.0)
        );
        let stop = controller.decide(Mode::Off, &meters(0.0, 0.0), &config, 32.0);
        assert_eq!((stop.current_a, stop.send), (None, true));
    }

    #[test]
    fn a_winter_surplus_charges_on_one_phase_and_returns_to_three() {
        let config = Config {
            phase_switching: true,
            phase_switch_delay_s: 120.0,
            phase_grace_s: 300.0,
            ..config()
        };
        let without = Config {
            phase_switching: false,
            ..config.clone()
        };
        // 2.5 kW export: below the 4140 W three-phase minimum, above the 1380 W one-phase one.
        let mut fixed = Controller::default();
        for t in (0..1200).step_by(60) {
            fixed.decide(Mode::Pv, &meters(2500.0, 0.0), &without, t as f64);
        }
        assert_eq!(
            fixed.current_a(),
            None,
            "without switching a winter surplus never charges"
        );

        let mut controller = Controller::default();
        assert!(
            !controller
                .decide(Mode::Pv, &meters(2500.0, 0.0), &config, 0.0)
                .phases_changed
        );
        let switched = controller.decide(Mode::Pv, &meters(2500.0, 0.0), &config, 120.0);
        assert!(
            switched.phases_changed && switched.phases == 1.0,
            "{switched:?}"
        );
        let start = controller.decide(Mode::Pv, &meters(2500.0, 0.0), &config, 180.0);
        // (2500 - 100) W / 230 W per A = 10.4 → 10 A on one phase.
        assert_eq!(
            (start.current_a, start.phases, start.send),
            (Some(10.0), 1.0, true),
            "{start:?}"
        );
        // The sun comes out; back to three phases only after the grace period.
        let early = controller.decide(Mode::Pv, &meters(6000.0, 2300.0), &config, 300.0);
        assert_eq!(early.phases, 1.0, "within the grace period: {early:?}");
        controller.decide(Mode::Pv, &meters(6000.0, 2300.0), &config, 420.0);
        let back = controller.decide(Mode::Pv, &meters(6000.0, 2300.0), &config, 540.0);
        assert!(back.phases_changed && back.phases == 3.0, "{back:?}");
        // (6000 + 2300 - 100) / 690 = 11.9 → 11 A on three phases.
        assert_eq!(back.current_a, Some(11.0));
        // fast always uses every phase.
        let quick = Config {
            phase_switch_delay_s: 0.0,
            ..config.clone()
        };
        let mut one = Controller::default();
        one.decide(Mode::Pv, &meters(2500.0, 0.0), &quick, 0.0);
        assert_eq!(one.phases(&quick), 1.0);
        let fast = one.decide(Mode::Fast, &meters(0.0, 0.0), &quick, 1.0);
        assert_eq!((fast.phases, fast.current_a), (3.0, Some(16.0)));
    }

    #[test]
    fn smart_waits_for_the_sun_until_the_deadline_needs_the_grid() {
        let config = Config {
            disable_delay_s: 0.0,
            ..config()
        };
        let mut controller = Controller::default();
        let dark = |demand| Meters {
            demand: Some(demand),
            ..meters(-300.0, 0.0)
        };
        // 20 kWh at 11 kW take 1.8 h, × 1.2 + 0.5 h = 2.7 h.
        let early = Demand {
            energy_kwh: 20.0,
            hours_left: 10.0,
        };
        let decision = controller.decide(Mode::Smart, &dark(early), &config, 0.0);
        assert_eq!(decision.current_a, None, "{}", decision.reason);
        assert!(
            decision.reason.contains("PV only for 7.3 h more"),
            "{}",
            decision.reason
        );
        let late = Demand {
            energy_kwh: 20.0,
            hours_left: 2.6,
        };
        let decision = controller.decide(Mode::Smart, &dark(late), &config, 10.0);
        assert_eq!(decision.current_a, Some(16.0), "{}", decision.reason);
        assert!(
            decision.reason.contains("grid allowed"),
            "{}",
            decision.reason
        );
        // Met: back to PV only, which without sun stops.
        let met = Demand {
            energy_kwh: 0.0,
            hours_left: 1.0,
        };
        let decision = controller.decide(Mode::Smart, &dark(met), &config, 20.0);
        assert_eq!(decision.current_a, None, "{}", decision.reason);
    }

    #[test]
    fn smart_charges_from_surplus_before_the_deadline_and_without_a_plan() {
        let config = Config {
            enable_delay_s: 0.0,
            ..config()
        };
        let sunny = Meters {
            demand: Some(Demand {
                energy_kwh: 20.0,
                hours_left: 10.0,
            }),
            ..meters(5000.0, 0.0)
        };
        let decision = Controller::default().decide(Mode::Smart, &sunny, &config, 0.0);
        assert_eq!(
            decision.current_a,
            Some(7.0),
            "(5000 − 100) / 690 W/A: {}",
            decision.reason
        );
        let no_plan = Controller::default().decide(Mode::Smart, &meters(5000.0, 0.0), &config, 0.0);
        assert_eq!(no_plan.current_a, Some(7.0), "{}", no_plan.reason);
        assert!(no_plan.reason.contains("no energy planned"));
    }

    #[test]
    fn modes_parse_and_name_the_choices_when_wrong() {
        assert_eq!(Mode::parse("min_pv"), Ok(Mode::MinPv));
        let error = Mode::parse("turbo").unwrap_err();
        assert!(
            error.contains("\"turbo\"") && error.contains("min_pv"),
            "{error}"
        );
    }
}
