//! The wallbox as it is against the wallbox as decided. Whenever they differ (a
//! command lost, safe mode just switched off, someone turned the wallbox by hand) the
//! decision is applied again; the same command is repeated at most once per
//! `retry_s`, so that a wallbox that is slow to follow is not flooded.

/// What the wallbox should do: 0 A = not charging.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Setpoint {
    pub current_a: f64,
    /// `None`: the wallbox cannot switch phases.
    pub phases: Option<f64>,
    /// The home battery's discharge lock; `None`: there is none.
    pub battery_hold: Option<bool>,
}

impl Setpoint {
    /// Whether the wallbox already does this (currents within 0.05 A).
    pub fn is_met_by(&self, actual: Actual) -> bool {
        !self.phases_differ(actual) && !self.current_differs(actual) && !self.hold_differs(actual)
    }

    fn phases_differ(&self, actual: Actual) -> bool {
        self.phases
            .is_some_and(|phases| !same(actual.phases, phases))
    }

    fn current_differs(&self, actual: Actual) -> bool {
        !same(actual.current_a, self.current_a)
    }

    fn hold_differs(&self, actual: Actual) -> bool {
        self.battery_hold
            .is_some_and(|hold| actual.battery_hold != Some(hold))
    }
}

/// What Home Assistant says the wallbox does (`None`: unavailable or unknown).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Actual {
    pub current_a: Option<f64>,
    pub phases: Option<f64>,
    pub battery_hold: Option<bool>,
}

/// One service call to the wallbox.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Write {
    BatteryHold(bool),
    Phases(f64),
    Current(f64),
}

/// Remembers what was last sent and when.
#[derive(Clone, Debug)]
pub struct Reconciler {
    retry_s: f64,
    last_sent: Option<(Setpoint, f64)>,
}

fn same(a: Option<f64>, b: f64) -> bool {
    a.is_some_and(|a| (a - b).abs() < 0.05)
}

impl Reconciler {
    pub fn new(retry_s: f64) -> Self {
        Self {
            retry_s,
            last_sent: None,
        }
    }

    /// The writes that bring the wallbox to `wanted` at `now_s`: the battery lock first
    /// (the car never starts on the battery), then phases (the new current never runs
    /// on the old phase count), then the current. None while `safe_mode`.
    pub fn writes(
        &mut self,
        wanted: Setpoint,
        actual: Actual,
        safe_mode: bool,
        now_s: f64,
    ) -> Vec<Write> {
        if safe_mode {
            // Nothing was sent: once safe mode is off, the difference is applied at once.
            self.last_sent = None;
            return Vec::new();
        }
        let phases_differ = wanted.phases_differ(actual);
        let current_differs = wanted.current_differs(actual);
        let hold_differs = wanted.hold_differs(actual);
        if !phases_differ && !current_differs && !hold_differs {
            return Vec::new();
        }
        if let Some((sent, at)) = self.last_sent {
            if sent == wanted && now_s - at < self.retry_s {
                return Vec::new();
            }
        }
        self.last_sent = Some((wanted, now_s));
        let mut writes = Vec::new();
        if let (true, Some(hold)) = (hold_differs, wanted.battery_hold) {
            writes.push(Write::BatteryHold(hold));
        }
        if let (true, Some(phases)) = (phases_differ, wanted.phases) {
            writes.push(Write::Phases(phases));
        }
        if current_differs || phases_differ {
            writes.push(Write::Current(wanted.current_a));
        }
        writes
    }

    /// When an unanswered command may be repeated.
    pub fn next_retry_s(&self) -> Option<f64> {
        self.last_sent.map(|(_, at)| at + self.retry_s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFF_3P: Setpoint = Setpoint {
        current_a: 0.0,
        phases: Some(3.0),
        battery_hold: None,
    };

    fn actual(current: f64, phases: f64) -> Actual {
        Actual {
            current_a: Some(current),
            phases: Some(phases),
            battery_hold: Some(false),
        }
    }

    #[test]
    fn writes_follow_the_difference_between_decided_and_actual() {
        let eight = Setpoint {
            current_a: 8.0,
            ..OFF_3P
        };
        let one_phase_ten = Setpoint {
            current_a: 10.0,
            phases: Some(1.0),
            battery_hold: None,
        };
        let no_switching = Setpoint {
            current_a: 8.0,
            phases: None,
            battery_hold: None,
        };
        let held_six = Setpoint {
            current_a: 6.0,
            phases: None,
            battery_hold: Some(true),
        };
        // (wanted, actual, safe mode, expected writes)
        let table = [
            (eight, actual(8.0, 3.0), false, vec![]),
            (eight, actual(6.0, 3.0), false, vec![Write::Current(8.0)]),
            (
                one_phase_ten,
                actual(6.0, 3.0),
                false,
                vec![Write::Phases(1.0), Write::Current(10.0)],
            ),
            (
                one_phase_ten,
                actual(10.0, 3.0),
                false,
                vec![Write::Phases(1.0), Write::Current(10.0)],
            ),
            (no_switching, actual(8.0, 1.0), false, vec![]),
            (
                OFF_3P,
                Actual::default(),
                false,
                vec![Write::Phases(3.0), Write::Current(0.0)],
            ),
            (eight, actual(0.0, 3.0), true, vec![]),
            (
                held_six,
                actual(0.0, 3.0),
                false,
                vec![Write::BatteryHold(true), Write::Current(6.0)],
            ),
            (
                held_six,
                actual(6.0, 3.0),
                false,
                vec![Write::BatteryHold(true)],
            ),
        ];
        for (wanted, now, safe, expected) in table {
            let mut reconciler = Reconciler::new(10.0);
            assert_eq!(
                reconciler.writes(wanted, now, safe, 0.0),
                expected,
                "{wanted:?} with the wallbox at {now:?}, safe mode {safe}"
            );
        }
    }

    #[test]
    fn a_lost_or_overridden_command_is_sent_again_at_a_bounded_rate() {
        let eight = Setpoint {
            current_a: 8.0,
            phases: None,
            battery_hold: None,
        };
        let mut reconciler = Reconciler::new(10.0);
        let stuck = actual(6.0, 3.0);
        assert_eq!(reconciler.writes(eight, stuck, false, 0.0).len(), 1);
        assert!(
            reconciler.writes(eight, stuck, false, 5.0).is_empty(),
            "not yet again"
        );
        assert_eq!(reconciler.next_retry_s(), Some(10.0));
        assert_eq!(
            reconciler.writes(eight, stuck, false, 10.0),
            vec![Write::Current(8.0)],
            "the wallbox did not follow: again"
        );
        // Someone turns the wallbox to 16 A by hand after it had followed.
        assert!(reconciler
            .writes(eight, actual(8.0, 3.0), false, 11.0)
            .is_empty());
        assert!(
            reconciler.writes(eight, actual(16.0, 3.0), false, 30.0) == vec![Write::Current(8.0)]
        );
        // A new decision is sent at once, whatever the retry interval.
        let nine = Setpoint {
            current_a: 9.0,
            phases: None,
            battery_hold: None,
        };
        assert_eq!(
            reconciler.writes(nine, actual(8.0, 3.0), false, 31.0),
            vec![Write::Current(9.0)]
        );
    }

    #[test]
    fn what_safe_mode_blocked_is_applied_as_soon_as_it_is_off() {
        let ten = Setpoint {
            current_a: 10.0,
            phases: None,
            battery_hold: None,
        };
        let mut reconciler = Reconciler::new(10.0);
        assert_eq!(
            reconciler.writes(ten, actual(6.0, 3.0), false, 0.0).len(),
            1
        );
        // Safe mode on before the wallbox followed; off again 2 s later.
        assert!(reconciler
            .writes(ten, actual(6.0, 3.0), true, 1.0)
            .is_empty());
        assert_eq!(
            reconciler.writes(ten, actual(6.0, 3.0), false, 2.0),
            vec![Write::Current(10.0)],
            "not held back by the retry interval"
        );
    }
}
