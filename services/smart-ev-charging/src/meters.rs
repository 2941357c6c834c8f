//! What the meters say, and whether to believe it. A cache of the last readings, fed
//! by Home Assistant's events (no REST round trip per event) and refreshed by the
//! backstop cycle, that knows each value's age and catches a grid meter frozen at its
//! last value: when the car's power steps and the grid reading does not follow within
//! a few seconds, the grid reading is not believed until it moves again.
//!
//! Times are seconds on the service's monotonic clock, passed in.

use crate::control::Meters;

/// The readings the decision uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Meter {
    /// Watts, positive while exporting.
    Grid,
    /// Watts, positive while the home battery charges.
    Battery,
    /// Percent.
    BatterySoc,
    /// Watts the car draws.
    Ev,
}

/// When to stop believing a reading.
#[derive(Clone, Debug)]
pub struct Trust {
    /// A reading not reported for this long is unavailable.
    pub max_age_s: f64,
    /// The grid must move this soon after the car's power stepped...
    pub follow_window_s: f64,
    /// ...by more than this.
    pub step_w: f64,
}

impl Default for Trust {
    fn default() -> Self {
        Self {
            max_age_s: 300.0,
            follow_window_s: 20.0,
            step_w: 1000.0,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
struct Sample {
    value: f64,
    changed_s: f64,
    reported_s: f64,
}

/// The last reading of each meter, and the last unanswered step of the car's power.
#[derive(Clone, Debug, Default)]
pub struct MeterCache {
    trust: Trust,
    grid: Option<Sample>,
    battery: Option<Sample>,
    soc: Option<Sample>,
    ev: Option<Sample>,
    /// When the car's power stepped and the grid has not moved since.
    unanswered_step_s: Option<f64>,
}

/// The meters as the decision sees them, and what was wrong with them.
#[derive(Clone, Debug, PartialEq)]
pub struct Assessed {
    pub meters: Meters,
    /// Why a configured meter is not believed, for the logs and the status.
    pub problems: Vec<String>,
}

impl MeterCache {
    pub fn new(trust: Trust) -> Self {
        Self {
            trust,
            ..Self::default()
        }
    }

    fn slot(&mut self, meter: Meter) -> &mut Option<Sample> {
        match meter {
            Meter::Grid => &mut self.grid,
            Meter::Battery => &mut self.battery,
            Meter::BatterySoc => &mut self.soc,
            Meter::Ev => &mut self.ev,
        }
    }

    /// A reading reported at `reported_s` (`None`: unavailable or not a number).
    /// The same value again only refreshes its age.
    pub fn record(&mut self, meter: Meter, value: Option<f64>, reported_s: f64) {
        let previous = *self.slot(meter);
        let Some(value) = value else {
            *self.slot(meter) = None;
            return;
        };
        let changed = previous.is_none_or(|p| p.value != value);
        let sample = Sample {
            value,
            changed_s: if changed {
                reported_s
            } else {
                previous.map_or(reported_s, |p| p.changed_s)
            },
            reported_s: reported_s.max(previous.map_or(f64::MIN, |p| p.reported_s)),
        };
        *self.slot(meter) = Some(sample);
        match meter {
            Meter::Ev => {
                let stepped = previous.is_some_and(|p| (p.value - value).abs() > self.trust.step_w);
                if stepped && self.unanswered_step_s.is_none() {
                    self.unanswered_step_s = Some(reported_s);
                }
            }
            Meter::Grid
                if changed
                    && self
                        .unanswered_step_s
                        .is_some_and(|step| reported_s >= step) =>
            {
                self.unanswered_step_s = None;
            }
            _ => {}
        }
    }

    /// The readings to decide on at `now_s`.
    pub fn assess(&self, battery_configured: bool, now_s: f64) -> Assessed {
        let trust = &self.trust;
        let mut problems = Vec::new();
        let mut fresh = |name: &str, sample: Option<Sample>, configured: bool| match sample {
            Some(s) if now_s - s.reported_s <= trust.max_age_s => Some(s),
            Some(s) => {
                problems.push(format!(
                    "{name} not reported for {:.0} s (limit {:.0} s)",
                    now_s - s.reported_s,
                    trust.max_age_s
                ));
                None
            }
            None if configured => {
                problems.push(format!("{name} unavailable"));
                None
            }
            None => None,
        };
        let mut grid = fresh("grid meter", self.grid, true);
        let ev = fresh("wallbox power", self.ev, true);
        let battery = fresh("battery power", self.battery, battery_configured);
        let soc = fresh("battery SoC", self.soc, battery_configured);
        if let (Some(step_s), Some(g)) = (self.unanswered_step_s, grid) {
            if now_s - step_s > trust.follow_window_s {
                problems.push(format!(
                    "grid meter frozen: the car's power stepped {:.0} s ago, the grid reading \
                     has not moved since {:.0} s before that",
                    now_s - step_s,
                    step_s - g.changed_s
                ));
                grid = None;
            }
        }
        Assessed {
            meters: Meters {
                grid_export_w: grid.map(|s| s.value),
                battery_charge_w: if battery_configured {
                    battery.map(|s| s.value)
                } else {
                    Some(0.0)
                },
                battery_soc: soc.map(|s| s.value),
                ev_power_w: ev.map(|s| s.value),
                grid_reported_s: grid.map(|s| s.reported_s),
                ev_changed_s: ev.map(|s| s.changed_s),
            },
            problems,
        }
    }

    /// When `assess` would next change its verdict by time alone (a frozen window or
    /// a reading coming of age), so that the service can decide again then.
    pub fn next_verdict_s(&self, now_s: f64) -> Option<f64> {
        let trust = &self.trust;
        let ages = [self.grid, self.battery, self.soc, self.ev]
            .into_iter()
            .flatten()
            .map(|s| s.reported_s + trust.max_age_s);
        let frozen = self.unanswered_step_s.map(|s| s + trust.follow_window_s);
        ages.chain(frozen).filter(|at| *at > now_s).reduce(f64::min)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trust() -> Trust {
        Trust {
            max_age_s: 300.0,
            follow_window_s: 10.0,
            step_w: 1000.0,
        }
    }

    /// (time, meter, value)
    type Event = (f64, Meter, Option<f64>);

    /// A cache fed `events` in order, assessed at `now_s`.
    fn assess(events: &[Event], now_s: f64) -> Assessed {
        let mut cache = MeterCache::new(trust());
        for &(at, meter, value) in events {
            cache.record(meter, value, at);
        }
        cache.assess(false, now_s)
    }

    #[test]
    fn fresh_consistent_readings_are_believed() {
        let got = assess(
            &[
                (0.0, Meter::Grid, Some(3000.0)),
                (0.0, Meter::Ev, Some(0.0)),
            ],
            5.0,
        );
        assert_eq!(got.problems, Vec::<String>::new());
        assert_eq!(got.meters.grid_export_w, Some(3000.0));
        assert_eq!(
            got.meters.battery_charge_w,
            Some(0.0),
            "no battery configured"
        );
        assert_eq!(got.meters.grid_reported_s, Some(0.0));
    }

    #[test]
    fn a_grid_meter_that_does_not_follow_the_car_is_frozen_until_it_moves() {
        use Meter::{Ev, Grid};
        // (events, assessed at, grid believed)
        let table: [(&[Event], f64, bool); 7] = [
            // The car steps by 4 kW at 10 s; the grid never moves.
            (
                &[
                    (0.0, Grid, Some(6000.0)),
                    (0.0, Ev, Some(0.0)),
                    (10.0, Ev, Some(4000.0)),
                ],
                19.0,
                true,
            ),
            (
                &[
                    (0.0, Grid, Some(6000.0)),
                    (0.0, Ev, Some(0.0)),
                    (10.0, Ev, Some(4000.0)),
                ],
                21.0,
                false,
            ),
            // The same value reported again is no answer.
            (
                &[
                    (0.0, Grid, Some(6000.0)),
                    (0.0, Ev, Some(0.0)),
                    (10.0, Ev, Some(4000.0)),
                    (15.0, Grid, Some(6000.0)),
                ],
                21.0,
                false,
            ),
            // It moves: believed again.
            (
                &[
                    (0.0, Grid, Some(6000.0)),
                    (0.0, Ev, Some(0.0)),
                    (10.0, Ev, Some(4000.0)),
                    (25.0, Grid, Some(2000.0)),
                ],
                26.0,
                true,
            ),
            // It moved with the car (reported half a second later): never frozen.
            (
                &[
                    (0.0, Grid, Some(6000.0)),
                    (0.0, Ev, Some(0.0)),
                    (10.0, Ev, Some(4000.0)),
                    (10.5, Grid, Some(2000.0)),
                ],
                60.0,
                true,
            ),
            // A small change of the car's power proves nothing.
            (
                &[
                    (0.0, Grid, Some(6000.0)),
                    (0.0, Ev, Some(0.0)),
                    (10.0, Ev, Some(500.0)),
                ],
                60.0,
                true,
            ),
            // Not reported for longer than the limit.
            (
                &[(0.0, Grid, Some(6000.0)), (0.0, Ev, Some(0.0))],
                301.0,
                false,
            ),
        ];
        for (i, (events, at, believed)) in table.into_iter().enumerate() {
            let got = assess(events, at);
            assert_eq!(
                got.meters.grid_export_w.is_some(),
                believed,
                "row {i} at {at} s: {:?}",
                got.problems
            );
            assert_eq!(
                got.problems.is_empty(),
                believed,
                "row {i}: a reason when not believed"
            );
        }
    }

    #[test]
    fn unavailable_readings_and_the_next_verdict_time() {
        let mut cache = MeterCache::new(trust());
        cache.record(Meter::Grid, Some(100.0), 0.0);
        cache.record(Meter::Ev, Some(0.0), 0.0);
        cache.record(Meter::Grid, None, 5.0);
        let got = cache.assess(true, 6.0);
        assert_eq!(got.meters.grid_export_w, None);
        assert_eq!(
            got.meters.battery_charge_w, None,
            "a configured battery that never reported"
        );
        assert!(
            got.problems
                .iter()
                .any(|p| p.contains("grid meter unavailable")),
            "{:?}",
            got.problems
        );
        cache.record(Meter::Grid, Some(100.0), 6.0);
        cache.record(Meter::Ev, Some(4000.0), 8.0);
        assert_eq!(
            cache.next_verdict_s(8.0),
            Some(18.0),
            "the frozen window ends"
        );
        assert_eq!(
            cache.next_verdict_s(20.0),
            Some(306.0),
            "then the grid reading comes of age"
        );
    }
}
