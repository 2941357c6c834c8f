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

/// The home battery and the car, as in evcc: below `priority_soc` the battery charges
/// first; above `buffer_soc` a running charge may draw on it; above
/// `buffer_start_soc` a charge may even start on it. The defaults never let the car
/// drain the battery.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BatteryPolicy {
    /// Below this SoC (%) what the battery charges with is not the car's.
    pub priority_soc: f64,
    /// Above this SoC (%) the battery may carry a running charge through a shortage.
    pub buffer_soc: Option<f64>,
    /// Above this SoC (%) a charge may start on the battery alone.
    pub buffer_start_soc: Option<f64>,
}

impl Default for BatteryPolicy {
    fn default() -> Self {
        Self {
            priority_soc: 80.0,
            buffer_soc: None,
            buffer_start_soc: None,
        }
    }
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
    pub battery: BatteryPolicy,
    /// Surplus must allow the minimum current this long before charging starts.
    pub enable_delay_s: f64,
    /// Surplus must be short this long before charging stops.
    pub disable_delay_s: f64,
    /// At most one current change per this interval (stops are never delayed by it).
    pub min_command_interval_s: f64,
    /// The wallbox can switch between one phase and `phases`.
    pub phase_switching: bool,
    /// A switch under load waits until the need for it has lasted this long.
    pub phase_switch_delay_s: f64,
    /// No further switch under load this long after one (contactors and cars need rest).
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
            battery: BatteryPolicy::default(),
            enable_delay_s: 60.0,
            disable_delay_s: 180.0,
            min_command_interval_s: 30.0,
            phase_switching: false,
            phase_switch_delay_s: 120.0,
            phase_grace_s: 300.0,
        }
    }
}

impl Config {
    /// Watts at the minimum current on `phases`.
    pub fn minimum_w(&self, phases: f64) -> f64 {
        self.min_current_a * phases * self.voltage_v
    }

    /// The fewest phases the wallbox can charge on.
    fn fewest_phases(&self) -> f64 {
        if self.phase_switching {
            1.0
        } else {
            self.phases
        }
    }
}

/// What the meters say now (see `meters`). `None` means unavailable, stale or frozen.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Meters {
    /// Positive while exporting (normalised from the configured sign convention).
    pub grid_export_w: Option<f64>,
    /// Positive while the home battery charges; `Some(0.0)` without a battery.
    pub battery_charge_w: Option<f64>,
    pub battery_soc: Option<f64>,
    /// What the car draws now.
    pub ev_power_w: Option<f64>,
    /// When the grid meter last reported: a raise needs a reading newer than the
    /// last command and than the car's last change.
    pub grid_reported_s: Option<f64>,
    /// When the car's power last changed.
    pub ev_changed_s: Option<f64>,
}

/// Power the car may use: export + what it draws now + the battery's share − reserve.
/// `None` when a meter it needs is unavailable. `charging`: a charge is running (the
/// battery buffer only carries a running charge).
pub fn surplus_w(meters: &Meters, config: &Config, charging: bool) -> Option<f64> {
    let export = meters.grid_export_w?;
    let ev = meters.ev_power_w.unwrap_or(0.0).max(0.0);
    let battery = meters.battery_charge_w?;
    // An unknown SoC counts as empty: the battery first.
    let soc = meters.battery_soc.unwrap_or(0.0);
    let policy = &config.battery;
    let buffering = charging && policy.buffer_soc.is_some_and(|buffer| soc >= buffer);
    let (battery_share, reserve) = if battery >= 0.0 {
        let share = if soc >= policy.priority_soc {
            battery
        } else {
            0.0
        };
        (share, config.grid_reserve_w)
    } else if buffering {
        // The battery carries the charge, and a cloud edge too: no reserve needed.
        (0.0, 0.0)
    } else {
        // What a discharging battery gives is a shortage, not surplus.
        (battery, config.grid_reserve_w)
    };
    Some(export + ev + battery_share - reserve)
}

/// The decision and why, for the status entity and the logs.
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    /// `None` = not charging.
    pub current_a: Option<f64>,
    /// Phases to charge on.
    pub phases: f64,
    pub reason: String,
    /// When a timer (a delay, a hold, the command interval) may change this decision:
    /// decide again then, whatever the meters do.
    pub recheck_at_s: Option<f64>,
}

/// Remembers what was decided and since when a condition holds (hysteresis).
#[derive(Clone, Debug, Default)]
pub struct Controller {
    current_a: Option<f64>,
    /// The running charge was started by the surplus rules (pv, min_pv): only such a
    /// charge is held at the minimum through a shortage.
    on_surplus: bool,
    last_command_s: Option<f64>,
    surplus_enough_since: Option<f64>,
    surplus_short_since: Option<f64>,
    /// `None` until a switch: all the configured phases.
    phases: Option<f64>,
    phases_wanted_since: Option<(f64, f64)>,
    last_phase_switch_s: Option<f64>,
    recheck: Option<f64>,
}

type Target = (Option<f64>, String);

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

    fn wake_at(&mut self, at_s: f64) {
        self.recheck = Some(self.recheck.map_or(at_s, |now| now.min(at_s)));
    }

    fn set_phases(&mut self, phases: f64, config: &Config, now_s: f64) {
        if phases != self.phases(config) {
            self.phases = Some(phases);
            self.last_phase_switch_s = Some(now_s);
        }
        self.phases_wanted_since = None;
    }

    fn amps(&self, config: &Config, watts: f64) -> f64 {
        let amps = watts / self.watts_per_amp(config);
        let stepped = (amps / config.current_step_a).floor() * config.current_step_a;
        stepped.clamp(config.min_current_a, config.max_current_a)
    }

    /// Decides for `mode` at time `now_s`. Smart is decided by `plan` and arrives here
    /// as `Fast` (grid allowed) or `Pv`.
    pub fn decide(&mut self, mode: Mode, meters: &Meters, config: &Config, now_s: f64) -> Decision {
        self.recheck = None;
        let phases_before = self.phases(config);
        let charging = self.current_a.is_some();
        let surplus = surplus_w(meters, config, charging);
        let (target, reason) = match mode {
            Mode::Off => (None, "mode off".to_string()),
            Mode::Fast => {
                self.set_phases(config.phases, config, now_s);
                self.on_surplus = false;
                (
                    Some(config.max_current_a),
                    "fast: maximum current".to_string(),
                )
            }
            Mode::Pv | Mode::Smart => self.pv(surplus, meters, config, now_s),
            Mode::MinPv => self.min_pv(surplus, meters, config, now_s),
        };
        if !matches!(mode, Mode::Pv | Mode::Smart | Mode::MinPv) {
            self.surplus_enough_since = None;
            self.surplus_short_since = None;
        }
        self.finish((target, reason), phases_before, config, now_s)
    }

    /// Smart's grid charge: at least `floor_w` (the average power that still meets
    /// the plan), more when the surplus gives more, on every phase. The grid only
    /// covers what the sun does not.
    pub fn decide_at_least(
        &mut self,
        floor_w: f64,
        hand_over_to_surplus: bool,
        meters: &Meters,
        config: &Config,
        now_s: f64,
    ) -> Decision {
        self.recheck = None;
        let phases_before = self.phases(config);
        self.set_phases(config.phases, config, now_s);
        self.on_surplus = false;
        self.surplus_enough_since = None;
        self.surplus_short_since = None;
        let step = config.current_step_a;
        let floor_a = ((floor_w / self.watts_per_amp(config) / step).ceil() * step)
            .clamp(config.min_current_a, config.max_current_a);
        let mut reason = String::new();
        let from_sun = surplus_w(meters, config, self.current_a.is_some()).map(|surplus| {
            let amps = self.amps(config, surplus.max(0.0));
            self.no_raise_on_old_readings(amps, meters, &mut reason)
        });
        let amps = from_sun.unwrap_or(0.0).max(floor_a);
        // A top-up hands over to surplus charging, which holds through a cloud like any
        // surplus charge; a grid charge ends with the plan met, and then stops at once
        // unless the sun alone carries the minimum (no grid draw after the plan).
        self.on_surplus = hand_over_to_surplus
            || surplus_w(meters, config, true)
                .is_some_and(|surplus| surplus >= config.minimum_w(config.phases));
        let target = (
            Some(amps),
            format!("at least {floor_w:.0} W ({floor_a} A), the sun gives {from_sun:?} A → {amps} A{reason}"),
        );
        self.finish(target, phases_before, config, now_s)
    }

    fn finish(
        &mut self,
        (target, reason): Target,
        phases_before: f64,
        config: &Config,
        now_s: f64,
    ) -> Decision {
        // A new phase count always takes its current with it: 16 A held over from one
        // phase would be 11 kW on three.
        let switched = self.phases(config) != phases_before;
        let (target, reason) = self.rate_limited(target, reason, switched, config, now_s);
        Decision {
            current_a: target,
            phases: self.phases(config),
            reason,
            recheck_at_s: self.recheck,
        }
    }

    /// Whether a raise may be based on these readings: the grid reading must be newer
    /// than the last command and than the car's last change, or the surplus mixes the
    /// car's new draw with an old grid value (a frozen meter makes that climb).
    fn readings_fresh(&self, meters: &Meters) -> bool {
        let Some(grid_s) = meters.grid_reported_s else {
            return false;
        };
        // Strictly after the car's change: a grid reading from the same moment may not
        // show it yet; the next one will (a raise waits one meter period at most).
        self.last_command_s.is_none_or(|command| grid_s >= command)
            && meters.ev_changed_s.is_none_or(|ev| grid_s >= ev)
    }

    /// Caps `amps` at the running current when the readings cannot justify more.
    fn no_raise_on_old_readings(&self, amps: f64, meters: &Meters, reason: &mut String) -> f64 {
        match self.current_a {
            Some(now) if amps > now && !self.readings_fresh(meters) => {
                reason.push_str(" (held: waiting for a grid reading newer than the last change)");
                now
            }
            _ => amps,
        }
    }

    fn min_pv(
        &mut self,
        surplus: Option<f64>,
        meters: &Meters,
        config: &Config,
        now_s: f64,
    ) -> Target {
        self.surplus_enough_since = None;
        self.surplus_short_since = None;
        let Some(surplus) = surplus else {
            return (
                Some(config.min_current_a),
                "meters unavailable: min_pv keeps the minimum".to_string(),
            );
        };
        if self.current_a.is_none() {
            // Starting: on as few phases as the surplus needs (idle: no delay).
            let phases = if config.phase_switching && surplus < config.minimum_w(config.phases) {
                1.0
            } else {
                config.phases
            };
            self.set_phases(phases, config, now_s);
        } else {
            self.consider_phases(surplus, config, now_s);
        }
        self.on_surplus = true;
        let mut reason = String::new();
        let amps = self.amps(config, surplus);
        let amps = self.no_raise_on_old_readings(amps, meters, &mut reason);
        (
            Some(amps),
            format!("min_pv: surplus {surplus:.0} W → {amps} A{reason}"),
        )
    }

    fn pv(&mut self, surplus: Option<f64>, meters: &Meters, config: &Config, now_s: f64) -> Target {
        let charging = self.current_a.is_some();
        let Some(surplus) = surplus else {
            self.surplus_enough_since = None;
            if !charging {
                return (None, "meters unavailable: not starting".to_string());
            }
            return self.shortage("meters unavailable", config, now_s);
        };
        let soc = meters.battery_soc.unwrap_or(0.0);
        let start_on_battery = !charging
            && config
                .battery
                .buffer_start_soc
                .is_some_and(|start| soc >= start);
        let enough = surplus >= config.minimum_w(config.fewest_phases()) || start_on_battery;
        if !enough {
            self.surplus_enough_since = None;
            if !charging {
                self.surplus_short_since = None;
                return (
                    None,
                    format!(
                        "pv: surplus {surplus:.0} W below the {:.0} W minimum",
                        config.minimum_w(config.fewest_phases())
                    ),
                );
            }
            return self.shortage(&format!("pv: surplus {surplus:.0} W short"), config, now_s);
        }
        self.surplus_short_since = None;
        if !charging {
            let since = *self.surplus_enough_since.get_or_insert(now_s);
            let waited = now_s - since;
            if waited < config.enable_delay_s {
                self.wake_at(since + config.enable_delay_s);
                return (
                    None,
                    format!(
                        "pv: surplus {surplus:.0} W, waiting {:.0} s more to start",
                        config.enable_delay_s - waited
                    ),
                );
            }
            // Idle: start straight on the phases the surplus carries.
            let phases = if config.phase_switching && surplus < config.minimum_w(config.phases) {
                1.0
            } else {
                config.phases
            };
            self.set_phases(phases, config, now_s);
            self.on_surplus = true;
            let amps = self.amps(config, surplus.max(0.0));
            return (
                Some(amps),
                format!(
                    "pv: surplus {surplus:.0} W for {waited:.0} s → start at {amps} A on {phases} phase(s)"
                ),
            );
        }
        self.surplus_enough_since = None;
        self.on_surplus = true;
        self.consider_phases(surplus, config, now_s);
        let mut reason = String::new();
        let amps = self.amps(config, surplus.max(0.0));
        let amps = self.no_raise_on_old_readings(amps, meters, &mut reason);
        (
            Some(amps),
            format!(
                "pv: surplus {surplus:.0} W → {amps} A on {} phase(s){reason}",
                self.phases(config)
            ),
        )
    }

    /// A running charge without enough surplus: a surplus-started charge holds the
    /// minimum for the disable delay (a cloud passes); any other (fast, smart's grid
    /// charge just ended) stops at once rather than draw the grid.
    fn shortage(&mut self, why: &str, config: &Config, now_s: f64) -> Target {
        if !self.on_surplus {
            self.surplus_short_since = None;
            return (None, format!("{why}: stop (no surplus to continue on)"));
        }
        let since = *self.surplus_short_since.get_or_insert(now_s);
        let short = now_s - since;
        if short >= config.disable_delay_s {
            return (None, format!("{why} for {short:.0} s → stop"));
        }
        self.wake_at(since + config.disable_delay_s);
        (
            Some(config.min_current_a),
            format!(
                "{why}, holding the minimum {:.0} s more",
                config.disable_delay_s - short
            ),
        )
    }

    /// Under load: to one phase when the surplus cannot carry the minimum on all of
    /// them, back when it can — after the delay, never within the grace after a switch.
    fn consider_phases(&mut self, surplus: f64, config: &Config, now_s: f64) {
        if !config.phase_switching {
            return;
        }
        let now_phases = self.phases(config);
        let wanted = if surplus >= config.minimum_w(config.phases) {
            config.phases
        } else {
            1.0
        };
        if wanted == now_phases {
            self.phases_wanted_since = None;
            return;
        }
        if let Some(last) = self.last_phase_switch_s {
            if now_s - last < config.phase_grace_s {
                self.wake_at(last + config.phase_grace_s);
                return;
            }
        }
        let since = match self.phases_wanted_since {
            Some((phases, since)) if phases == wanted => since,
            _ => {
                self.phases_wanted_since = Some((wanted, now_s));
                now_s
            }
        };
        if now_s - since < config.phase_switch_delay_s {
            self.wake_at(since + config.phase_switch_delay_s);
            return;
        }
        self.set_phases(wanted, config, now_s);
    }

    /// At most one raise per command interval; starts, stops, lowering and phase switches
    /// are never held.
    fn rate_limited(
        &mut self,
        target: Option<f64>,
        reason: String,
        switched_phases: bool,
        config: &Config,
        now_s: f64,
    ) -> Target {
        if target == self.current_a {
            return (target, reason);
        }
        let stopping = target.is_none();
        let starting = self.current_a.is_none();
        // Less current is never held back: it is what keeps a cloud edge off the grid.
        let lowering = matches!((target, self.current_a), (Some(to), Some(from)) if to < from);
        if let Some(last) = self.last_command_s {
            let next = last + config.min_command_interval_s;
            if now_s < next && !stopping && !starting && !lowering && !switched_phases {
                self.wake_at(next);
                return (
                    self.current_a,
                    format!(
                        "{reason} (held: last change under {:.0} s ago)",
                        config.min_command_interval_s
                    ),
                );
            }
        }
        if stopping {
            self.on_surplus = false;
        }
        self.current_a = target;
        self.last_command_s = Some(now_s);
        (target, reason)
    }
}

/// Whether the home battery's discharge lock is to be on. While the car takes more
/// than the sun gives (min_pv's minimum, smart's grid charge, a hold through a cloud)
/// the battery would fill the gap and empty itself into the car; the lock makes the
/// grid give it instead. `fast` is the user's choice to take everything, and above
/// the buffer SoC the user allowed the battery to carry a charge. Hysteresis: a lock
/// stays on until the sun gives clearly more than the car takes.
pub fn battery_hold(
    decision: &Decision,
    mode: Mode,
    meters: &Meters,
    config: &Config,
    held_now: bool,
) -> bool {
    if decision.current_a.is_none() || mode == Mode::Fast {
        return false;
    }
    let soc = meters.battery_soc.unwrap_or(0.0);
    if config
        .battery
        .buffer_soc
        .is_some_and(|buffer| soc >= buffer)
    {
        return false;
    }
    // What the car draws, or will draw once it follows the decision.
    let measured_w = meters.ev_power_w.unwrap_or(0.0).max(0.0);
    let car_w =
        measured_w.max(decision.current_a.unwrap_or(0.0) * decision.phases * config.voltage_v);
    // Export + car + battery charging = PV − house: what the sun gives the car.
    let (Some(export), Some(battery)) = (meters.grid_export_w, meters.battery_charge_w) else {
        return true; // blind: the safe side
    };
    let sun_for_car = export + measured_w + battery;
    if held_now {
        sun_for_car < car_w + 300.0
    } else {
        sun_for_car < car_w - 100.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Readings taken at `at_s`, all consistent (the grid reported after the car moved).
    fn meters_at(export: f64, ev: f64, at_s: f64) -> Meters {
        Meters {
            grid_export_w: Some(export),
            battery_charge_w: Some(0.0),
            battery_soc: Some(50.0),
            ev_power_w: Some(ev),
            grid_reported_s: Some(at_s),
            ev_changed_s: Some(at_s),
        }
    }

    fn config() -> Config {
        Config {
            min_command_interval_s: 0.0,
            ..Config::default()
        }
    }

    /// Feeds (time, export, ev) steps and returns each decision's current.
    fn replay(mode: Mode, config: &Config, steps: &[(f64, f64, f64)]) -> Vec<Option<f64>> {
        let mut controller = Controller::default();
        steps
            .iter()
            .map(|&(t, export, ev)| {
                controller
                    .decide(mode, &meters_at(export, ev, t), config, t)
                    .current_a
            })
            .collect()
    }

    #[test]
    fn surplus_follows_the_battery_policy() {
        let home_first = config();
        let buffered = Config {
            battery: BatteryPolicy {
                priority_soc: 50.0,
                buffer_soc: Some(70.0),
                buffer_start_soc: None,
            },
            ..config()
        };
        let car_first = Config {
            battery: BatteryPolicy {
                priority_soc: 0.0,
                ..BatteryPolicy::default()
            },
            ..config()
        };
        // (config, battery W (+ charging), SoC, a charge runs, expected surplus)
        // with 1000 W export, 4000 W in the car and the 100 W reserve.
        let table = [
            (&home_first, 2000.0, Some(50.0), true, 4900.0),
            (&home_first, 2000.0, Some(85.0), true, 6900.0),
            (&home_first, 2000.0, None, true, 4900.0),
            (&home_first, -1500.0, Some(95.0), true, 3400.0),
            (&car_first, 2000.0, Some(10.0), true, 6900.0),
            (&car_first, -1500.0, Some(10.0), true, 3400.0),
            (&buffered, -1500.0, Some(75.0), true, 5000.0),
            (&buffered, -1500.0, Some(75.0), false, 3400.0),
            (&buffered, -1500.0, Some(65.0), true, 3400.0),
        ];
        for (config, battery, soc, charging, expected) in table {
            let meters = Meters {
                battery_charge_w: Some(battery),
                battery_soc: soc,
                ..meters_at(1000.0, 4000.0, 0.0)
            };
            assert_eq!(
                surplus_w(&meters, config, charging),
                Some(expected),
                "battery {battery} W at {soc:?} %, charging {charging}, {:?}",
                config.battery
            );
        }
        let no_battery_reading = Meters {
            battery_charge_w: None,
            ..meters_at(1000.0, 4000.0, 0.0)
        };
        assert_eq!(surplus_w(&no_battery_reading, &home_first, true), None);
    }

    #[test]
    fn pv_starts_after_the_enable_delay_and_follows_the_surplus() {
        let config = config();
        let mut controller = Controller::default();
        let waiting = controller.decide(Mode::Pv, &meters_at(5000.0, 0.0, 0.0), &config, 0.0);
        assert_eq!(waiting.current_a, None);
        assert_eq!(
            waiting.recheck_at_s,
            Some(60.0),
            "the decision knows when the delay runs out"
        );
        // 5 kW export: (5000 - 100) W / 690 W per A = 7.1 → 7 A, only after 60 s.
        let steps = [
            (0.0, 5000.0, 0.0, None),
            (59.0, 5000.0, 0.0, None),
            (60.0, 5000.0, 0.0, Some(7.0)),
            // The car draws 7 A × 690 W; export drops accordingly, the surplus stays.
            (70.0, 5000.0 - 4830.0, 4830.0, Some(7.0)),
            (80.0, 5000.0, 4830.0, Some(14.0)),
            (90.0, 20000.0, 4830.0, Some(16.0)),
        ];
        let got = replay(Mode::Pv, &config, &steps.map(|(t, e, ev, _)| (t, e, ev)));
        assert_eq!(got, steps.map(|s| s.3).to_vec());
    }

    #[test]
    fn a_passing_cloud_holds_the_minimum_and_a_long_shortage_stops() {
        let config = config();
        let got = replay(
            Mode::Pv,
            &config,
            &[
                (0.0, 6000.0, 0.0),
                (60.0, 6000.0, 0.0),
                // A 2-minute cloud: short, the minimum is held.
                (70.0, -500.0, 4140.0),
                (189.0, -500.0, 4140.0),
                (200.0, 2000.0, 4140.0),
                // A long shortage: stop after the 180 s disable delay.
                (300.0, -3000.0, 4140.0),
                (479.0, -3000.0, 4140.0),
                (480.0, -3000.0, 4140.0),
            ],
        );
        assert_eq!(
            got,
            vec![
                None,
                Some(8.0),
                Some(6.0),
                Some(6.0),
                Some(8.0),
                Some(6.0),
                Some(6.0),
                None
            ]
        );
        let mut controller = Controller::default();
        controller.decide(Mode::Pv, &meters_at(6000.0, 0.0, 0.0), &config, 0.0);
        controller.decide(Mode::Pv, &meters_at(6000.0, 0.0, 60.0), &config, 60.0);
        let held = controller.decide(Mode::Pv, &meters_at(-500.0, 4140.0, 70.0), &config, 70.0);
        assert_eq!(held.recheck_at_s, Some(250.0), "{}", held.reason);
    }

    #[test]
    fn unavailable_meters_lead_to_each_mode_s_safe_action() {
        let config = config();
        let dead = Meters::default();
        // (mode, charging before at 8 A, seconds since the loss, expected current)
        let table = [
            (Mode::Fast, false, 0.0, Some(16.0)),
            (Mode::MinPv, false, 0.0, Some(6.0)),
            (Mode::MinPv, true, 0.0, Some(6.0)),
            (Mode::Pv, false, 0.0, None),
            (Mode::Pv, true, 0.0, Some(6.0)),
            (Mode::Pv, true, 179.0, Some(6.0)),
            (Mode::Pv, true, 180.0, None),
            (Mode::Off, true, 0.0, None),
        ];
        for (mode, charging, after_s, expected) in table {
            let mut controller = Controller::default();
            if charging {
                controller.decide(Mode::Pv, &meters_at(6000.0, 0.0, 0.0), &config, 0.0);
                controller.decide(Mode::Pv, &meters_at(6000.0, 0.0, 60.0), &config, 60.0);
                assert_eq!(controller.current_a(), Some(8.0));
            }
            controller.decide(mode, &dead, &config, 100.0);
            let decision = controller.decide(mode, &dead, &config, 100.0 + after_s);
            assert_eq!(
                decision.current_a, expected,
                "{mode:?}, charging {charging}, {after_s} s after the loss: {}",
                decision.reason
            );
        }
    }

    #[test]
    fn a_grid_reading_older_than_the_last_command_never_raises_the_current() {
        let config = config();
        let mut controller = Controller::default();
        controller.decide(Mode::Pv, &meters_at(6000.0, 0.0, 0.0), &config, 0.0);
        assert_eq!(
            controller
                .decide(Mode::Pv, &meters_at(6000.0, 0.0, 60.0), &config, 60.0)
                .current_a,
            Some(8.0)
        );
        // The car now draws 5.5 kW but the grid meter froze at 6 kW export (last
        // reported before the command): export + car would say 16 A.
        let frozen = Meters {
            ev_power_w: Some(5520.0),
            ev_changed_s: Some(65.0),
            ..meters_at(6000.0, 0.0, 59.0)
        };
        for t in [65.0, 95.0, 125.0] {
            let held = controller.decide(Mode::Pv, &frozen, &config, t);
            assert_eq!(held.current_a, Some(8.0), "at {t} s: {}", held.reason);
            assert!(
                held.reason.contains("waiting for a grid reading"),
                "{}",
                held.reason
            );
        }
        // A reading newer than the car's change is believed again, and so is a lower one.
        let fresh = meters_at(480.0, 5520.0, 130.0);
        assert_eq!(
            controller
                .decide(Mode::Pv, &fresh, &config, 130.0)
                .current_a,
            Some(8.0)
        );
        let less = Meters {
            grid_export_w: Some(-1000.0),
            ..frozen
        };
        assert_eq!(
            controller.decide(Mode::Pv, &less, &config, 140.0).current_a,
            Some(6.0),
            "lowering never waits"
        );
    }

    #[test]
    fn raises_are_rate_limited_but_lowering_and_stops_are_not() {
        let config = Config {
            min_command_interval_s: 30.0,
            enable_delay_s: 0.0,
            ..Config::default()
        };
        let mut controller = Controller::default();
        let at = |export: f64, ev: f64, t: f64| meters_at(export, ev, t);
        assert_eq!(
            controller
                .decide(Mode::Pv, &at(6000.0, 0.0, 0.0), &config, 0.0)
                .current_a,
            Some(8.0)
        );
        let held = controller.decide(Mode::Pv, &at(4000.0, 5520.0, 10.0), &config, 10.0);
        assert_eq!(held.current_a, Some(8.0), "{}", held.reason);
        assert_eq!(
            held.recheck_at_s,
            Some(30.0),
            "decided again when the interval ends"
        );
        assert_eq!(
            controller
                .decide(Mode::Pv, &at(4000.0, 5520.0, 30.0), &config, 30.0)
                .current_a,
            Some(13.0),
            "(4000 + 5520 − 100) / 690 = 13.7"
        );
        let lower = controller.decide(Mode::Pv, &at(-2000.0, 8970.0, 31.0), &config, 31.0);
        assert_eq!(
            lower.current_a,
            Some(9.0),
            "a cloud edge lowers at once: {}",
            lower.reason
        );
        let stop = controller.decide(Mode::Off, &at(0.0, 0.0, 32.0), &config, 32.0);
        assert_eq!(stop.current_a, None);
    }

    #[test]
    fn idle_starts_on_the_phases_the_surplus_carries_and_switches_under_load_after_the_delay() {
        let config = Config {
            phase_switching: true,
            enable_delay_s: 60.0,
            phase_switch_delay_s: 120.0,
            phase_grace_s: 300.0,
            ..config()
        };
        let without = Config {
            phase_switching: false,
            ..config.clone()
        };
        // 2.5 kW export: below the 4140 W three-phase minimum, above the 1380 W one-phase one.
        let winter: Vec<_> = (0..20).map(|i| (i as f64 * 60.0, 2500.0, 0.0)).collect();
        assert!(
            replay(Mode::Pv, &without, &winter)
                .iter()
                .all(Option::is_none),
            "without switching a winter surplus never charges"
        );
        let mut controller = Controller::default();
        controller.decide(Mode::Pv, &meters_at(2500.0, 0.0, 0.0), &config, 0.0);
        let start = controller.decide(Mode::Pv, &meters_at(2500.0, 0.0, 60.0), &config, 60.0);
        // (2500 - 100) W / 230 W per A = 10.4 → 10 A, straight on one phase at the start.
        assert_eq!(
            (start.current_a, start.phases),
            (Some(10.0), 1.0),
            "{}",
            start.reason
        );
        // The sun comes out: 3 phases only after the grace (300 s after the switch at 60 s).
        let early = controller.decide(Mode::Pv, &meters_at(6000.0, 2300.0, 200.0), &config, 200.0);
        assert_eq!(early.phases, 1.0, "within the grace: {}", early.reason);
        assert_eq!(early.recheck_at_s, Some(360.0));
        controller.decide(Mode::Pv, &meters_at(6000.0, 2300.0, 360.0), &config, 360.0);
        let still = controller.decide(Mode::Pv, &meters_at(6000.0, 2300.0, 479.0), &config, 479.0);
        assert_eq!(still.phases, 1.0, "the switch delay runs after the grace");
        let back = controller.decide(Mode::Pv, &meters_at(6000.0, 2300.0, 480.0), &config, 480.0);
        // (6000 + 2300 - 100) / 690 = 11.9 → 11 A on three phases, in the same decision.
        assert_eq!(
            (back.phases, back.current_a),
            (3.0, Some(11.0)),
            "{}",
            back.reason
        );
        // fast always uses every phase, at once.
        let fast = controller.decide(Mode::Fast, &meters_at(0.0, 0.0, 481.0), &config, 481.0);
        assert_eq!((fast.phases, fast.current_a), (3.0, Some(16.0)));
    }

    #[test]
    fn a_blocked_phase_switch_never_forces_a_stop() {
        let config = Config {
            phase_switching: true,
            enable_delay_s: 0.0,
            disable_delay_s: 60.0,
            phase_switch_delay_s: 120.0,
            ..config()
        };
        let mut controller = Controller::default();
        let start = controller.decide(Mode::Pv, &meters_at(8000.0, 0.0, 0.0), &config, 0.0);
        assert_eq!((start.phases, start.current_a), (3.0, Some(11.0)));
        // Clouds: 2 kW surplus carries one phase, not three. The switch waits 120 s,
        // longer than the 60 s disable delay: the charge goes on at the minimum meanwhile.
        for t in [60.0, 120.0, 179.0] {
            let held = controller.decide(Mode::Pv, &meters_at(-2040.0, 4140.0, t), &config, t);
            assert_eq!(
                (held.phases, held.current_a),
                (3.0, Some(6.0)),
                "at {t} s: {}",
                held.reason
            );
        }
        let switched =
            controller.decide(Mode::Pv, &meters_at(-2040.0, 4140.0, 180.0), &config, 180.0);
        // (−2040 + 4140 − 100) W / 230 W per A = 8.7 → 8 A on one phase.
        assert_eq!(
            (switched.phases, switched.current_a),
            (1.0, Some(8.0)),
            "{}",
            switched.reason
        );
    }

    #[test]
    fn a_charge_that_was_not_started_by_the_sun_stops_at_once_without_it() {
        let config = config();
        let mut controller = Controller::default();
        let dark = meters_at(-300.0, 0.0, 0.0);
        assert_eq!(
            controller.decide(Mode::Fast, &dark, &config, 0.0).current_a,
            Some(16.0)
        );
        // Smart's grid charge ends (plan met): no minimum hold drawing the grid.
        let after = controller.decide(Mode::Pv, &meters_at(-11340.0, 11040.0, 10.0), &config, 10.0);
        assert_eq!(after.current_a, None, "{}", after.reason);
        // With sun it carries on from the surplus.
        let mut sunny = Controller::default();
        sunny.decide(Mode::Fast, &dark, &config, 0.0);
        let on = sunny.decide(Mode::Pv, &meters_at(-4000.0, 11040.0, 10.0), &config, 10.0);
        assert_eq!(
            on.current_a,
            Some(10.0),
            "(−4000 + 11040 − 100) / 690: {}",
            on.reason
        );
    }

    #[test]
    fn the_battery_buffer_starts_and_carries_a_charge_only_when_allowed() {
        let config = Config {
            enable_delay_s: 0.0,
            disable_delay_s: 0.0,
            battery: BatteryPolicy {
                priority_soc: 50.0,
                buffer_soc: Some(70.0),
                buffer_start_soc: Some(90.0),
            },
            ..config()
        };
        let night = |soc: f64, battery: f64, ev: f64| Meters {
            battery_charge_w: Some(battery),
            battery_soc: Some(soc),
            ..meters_at(0.0, ev, 0.0)
        };
        let mut full = Controller::default();
        let start = full.decide(Mode::Pv, &night(95.0, 0.0, 0.0), &config, 0.0);
        assert_eq!(
            start.current_a,
            Some(6.0),
            "above 90 % it starts on the battery"
        );
        let carried = full.decide(Mode::Pv, &night(80.0, -4140.0, 4140.0), &config, 10.0);
        assert_eq!(
            carried.current_a,
            Some(6.0),
            "above 70 % it carries the charge"
        );
        let drained = full.decide(Mode::Pv, &night(69.0, -4140.0, 4140.0), &config, 20.0);
        assert_eq!(drained.current_a, None, "below the buffer it stops");
        let mut half = Controller::default();
        assert_eq!(
            half.decide(Mode::Pv, &night(85.0, 0.0, 0.0), &config, 0.0)
                .current_a,
            None,
            "below the start SoC nothing starts on the battery"
        );
        let defaults = Config {
            battery: BatteryPolicy::default(),
            ..config.clone()
        };
        assert_eq!(
            Controller::default()
                .decide(Mode::Pv, &night(100.0, 0.0, 0.0), &defaults, 0.0)
                .current_a,
            None,
            "by default the car never drains the battery"
        );
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

    #[test]
    fn the_battery_is_locked_while_the_car_takes_more_than_the_sun() {
        let config = config();
        let charging = Decision {
            current_a: Some(6.0),
            phases: 3.0,
            reason: String::new(),
            recheck_at_s: None,
        };
        let idle = Decision {
            current_a: None,
            ..charging.clone()
        };
        // (mode, decision, export, car, battery, SoC, held now, expected)
        let night = (-200.0, 4140.0, -4000.0);
        let sunny = (1000.0, 4140.0, 0.0);
        let starting = (500.0, 0.0, 0.0);
        let edge = (-100.0, 4140.0, 0.0);
        let table = [
            (Mode::MinPv, &charging, night, 50.0, false, true),
            (Mode::Smart, &charging, night, 50.0, false, true),
            (Mode::Fast, &charging, night, 50.0, false, false),
            (Mode::MinPv, &idle, night, 50.0, false, false),
            (Mode::MinPv, &charging, sunny, 50.0, false, false),
            (Mode::MinPv, &charging, sunny, 50.0, true, false),
            (Mode::MinPv, &charging, edge, 50.0, false, false),
            (Mode::MinPv, &charging, edge, 50.0, true, true),
            // The car has not started yet: 500 W of sun will not carry its 4140 W.
            (Mode::MinPv, &charging, starting, 50.0, false, true),
        ];
        for (mode, decision, (export, car, battery), soc, held, expected) in table {
            let meters = Meters {
                battery_charge_w: Some(battery),
                battery_soc: Some(soc),
                ..meters_at(export, car, 0.0)
            };
            assert_eq!(
                battery_hold(decision, mode, &meters, &config, held),
                expected,
                "{mode:?}, charging {:?}, export {export}, battery {battery}, held {held}",
                decision.current_a
            );
        }
        let buffered = Config {
            battery: BatteryPolicy {
                buffer_soc: Some(60.0),
                ..BatteryPolicy::default()
            },
            ..config.clone()
        };
        let full = Meters {
            battery_charge_w: Some(-4000.0),
            battery_soc: Some(70.0),
            ..meters_at(-200.0, 4140.0, 0.0)
        };
        assert!(
            !battery_hold(&charging, Mode::MinPv, &full, &buffered, false),
            "above the buffer"
        );
        assert!(
            battery_hold(&charging, Mode::MinPv, &Meters::default(), &config, false),
            "blind"
        );
    }
}
