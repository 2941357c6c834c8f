//! Smart mode: ev-forecast's plan, what the car got since, pv-forecast's hours, and
//! from when the grid must help. The grid start is decided when the plan or the
//! forecast changes and looked at again once per slot, never in between (no
//! flip-flop); once the grid charges it goes on until the plan is met.
//!
//! Wall-clock times (deadlines are), passed in.

use chrono::{DateTime, Duration, Utc};

pub use homelab::messages::ev_forecast::Plan;
pub use homelab::messages::pv_forecast::{HourEnergy, Updated as PvForecast};

/// What the car and the house can do.
#[derive(Clone, Debug)]
pub struct SmartConfig {
    /// Charging power at the maximum current on every phase.
    pub max_power_kw: f64,
    /// The smallest power a surplus charge runs at (the minimum current on the fewest phases).
    pub min_power_kw: f64,
    /// What the house uses while the sun shines, taken off the forecast.
    pub house_load_kw: f64,
    /// The share of the forecast surplus counted on (forecasts err, clouds pass).
    pub pv_confidence: f64,
    /// Grid charging time is stretched by this (taper near full, losses)...
    pub margin: f64,
    /// ...and starts this much earlier still.
    pub buffer: Duration,
    /// The grid start is looked at again once per slot.
    pub slot: Duration,
}

impl Default for SmartConfig {
    fn default() -> Self {
        Self {
            max_power_kw: 11.04,
            min_power_kw: 4.14,
            house_load_kw: 0.5,
            pv_confidence: 0.7,
            margin: 1.15,
            buffer: Duration::minutes(20),
            slot: Duration::minutes(15),
        }
    }
}

/// What smart mode does now.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    /// The grid must help: charge with at least `power_w` (more when the sun gives
    /// more) until the plan is met.
    Grid { power_w: f64, reason: String },
    /// The grid tops the sun up to `power_w` (the car's minimum) in a sunny hour;
    /// afterwards surplus charging carries on.
    TopUp { power_w: f64, reason: String },
    /// Surplus only (the plan is met, there is none, or the sun still has time).
    Surplus(String),
}

/// The plan, its progress and the grid start.
#[derive(Clone, Debug, Default)]
pub struct Smart {
    plan: Option<Plan>,
    forecast: Vec<HourEnergy>,
    delivered_kwh: f64,
    last_sample: Option<(DateTime<Utc>, f64)>,
    grid_from: Option<DateTime<Utc>>,
    next_review: Option<DateTime<Utc>>,
    grid_on: bool,
    /// For this slot: the grid tops up the sun at the car's minimum power.
    top_up: bool,
}

impl Smart {
    pub fn plan(&self) -> Option<&Plan> {
        self.plan.as_ref()
    }

    /// A new plan: a new deadline (or a plan that knows the car's SoC) restarts the
    /// count of what was delivered.
    pub fn update_plan(&mut self, plan: Plan, config: &SmartConfig, now: DateTime<Utc>) {
        let new_deadline = self.plan.as_ref().map(|p| p.deadline) != Some(plan.deadline);
        if new_deadline || plan.ev_soc.is_some() {
            self.delivered_kwh = 0.0;
        }
        if new_deadline {
            self.grid_on = false;
        }
        self.plan = Some(plan);
        self.schedule(config, now);
    }

    pub fn update_forecast(
        &mut self,
        forecast: PvForecast,
        config: &SmartConfig,
        now: DateTime<Utc>,
    ) {
        self.forecast = if forecast.stale {
            Vec::new()
        } else {
            forecast
                .today
                .into_iter()
                .chain(forecast.tomorrow)
                .collect()
        };
        self.schedule(config, now);
    }

    /// Counts what the car drew since the last sample (at the power it drew then).
    pub fn count(&mut self, ev_power_w: Option<f64>, now: DateTime<Utc>) {
        if let Some((last, watts)) = self.last_sample {
            let hours = (now - last).num_milliseconds().max(0) as f64 / 3_600_000.0;
            self.delivered_kwh += watts.max(0.0) * hours / 1000.0;
        }
        self.last_sample = ev_power_w.map(|w| (now, w));
    }

    /// Energy the plan still asks for.
    pub fn remaining_kwh(&self) -> f64 {
        self.plan
            .as_ref()
            .map_or(0.0, |p| (p.energy_needed_kwh - self.delivered_kwh).max(0.0))
    }

    fn deadline(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.plan.as_ref()?.deadline.filter(|d| *d > now)
    }

    /// What the sun is expected to put into the car between `from` and `until`, kWh,
    /// for keeping a deadline: the forecast's P10 where pv-forecast gives a range (9
    /// days in 10 bring at least that), else `config.pv_confidence` of the forecast.
    pub fn expected_pv_kwh(
        &self,
        config: &SmartConfig,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> f64 {
        if !self.forecast.is_empty() && self.forecast.iter().all(|h| h.p10_kwh.is_some()) {
            return self.surplus_kwh(config, from, until, config.min_power_kw, |hour| {
                hour.p10_kwh.unwrap_or(hour.kwh)
            });
        }
        self.forecast_pv_kwh(config, from, until, config.min_power_kw) * config.pv_confidence
    }

    /// The forecast's surplus between `from` and `until`, kWh, counting hours whose
    /// surplus reaches `at_least_kw` (a surplus charge cannot run below the minimum).
    fn forecast_pv_kwh(
        &self,
        config: &SmartConfig,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
        at_least_kw: f64,
    ) -> f64 {
        self.surplus_kwh(config, from, until, at_least_kw, |hour| hour.kwh)
    }

    /// The surplus of `energy(hour)` (central, or P10) between `from` and `until`.
    fn surplus_kwh(
        &self,
        config: &SmartConfig,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
        at_least_kw: f64,
        energy: impl Fn(&HourEnergy) -> f64,
    ) -> f64 {
        self.forecast
            .iter()
            .map(|hour| {
                let end = hour.start + Duration::hours(1);
                let overlap =
                    (end.min(until) - hour.start.max(from)).num_seconds().max(0) as f64 / 3600.0;
                let surplus_kw = energy(hour) - config.house_load_kw;
                if surplus_kw <= 0.0 || surplus_kw < at_least_kw {
                    0.0
                } else {
                    surplus_kw.min(config.max_power_kw) * overlap
                }
            })
            .sum()
    }

    /// The latest grid start that still meets the deadline, counting on the sun before it.
    fn latest_grid_start(
        &self,
        config: &SmartConfig,
        now: DateTime<Utc>,
        deadline: DateTime<Utc>,
    ) -> DateTime<Utc> {
        let energy = self.remaining_kwh();
        let needed = |kwh: f64| {
            Duration::seconds((kwh.max(0.0) / config.max_power_kw * config.margin * 3600.0) as i64)
                + config.buffer
        };
        // Walk back from the deadline in 5-minute steps: the first start whose grid
        // time covers what the sun before it leaves is the latest one.
        let step = Duration::minutes(5);
        let mut start = deadline;
        while start > now {
            let from_sun = self.expected_pv_kwh(config, now, start);
            if deadline - start >= needed(energy - from_sun) {
                return start;
            }
            start -= step;
        }
        now
    }

    /// Decides the grid start again (on a new plan or forecast, and once per slot).
    fn schedule(&mut self, config: &SmartConfig, now: DateTime<Utc>) {
        self.next_review = Some(now + config.slot);
        let deadline = self.deadline(now).filter(|_| self.remaining_kwh() > 0.0);
        self.grid_from = deadline.map(|deadline| self.latest_grid_start(config, now, deadline));
        self.top_up = deadline.is_some_and(|deadline| {
            let chosen = self
                .top_up_hours(config, now, deadline)
                .iter()
                .any(|hour| *hour <= now && now < *hour + Duration::hours(1));
            // Hysteresis: a running top-up goes on while the sun that a surplus charge
            // takes alone does not cover the rest (no stop and restart before the plan).
            let keep_on = self.top_up
                && self.remaining_kwh()
                    > self.forecast_pv_kwh(config, now, deadline, config.min_power_kw);
            chosen || keep_on
        });
    }

    /// The hours in which the grid tops the sun up to the car's minimum. A surplus
    /// that carries the minimum goes into the car anyway; when that is not enough, a
    /// charge at the minimum takes a smaller surplus too, with the grid giving the
    /// rest: in the sunniest such hours first, where it costs the least grid per kWh,
    /// until the plan is covered. What they cannot cover is the grid charge's, later.
    fn top_up_hours(
        &self,
        config: &SmartConfig,
        now: DateTime<Utc>,
        deadline: DateTime<Utc>,
    ) -> Vec<DateTime<Utc>> {
        // Only when even all the sun in the forecast cannot cover the plan is the grid
        // needed for sure; otherwise the sun may still do it (a cloudy hour's average
        // hides sunny minutes a surplus charge takes).
        if self.remaining_kwh() <= self.forecast_pv_kwh(config, now, deadline, 0.0) {
            return Vec::new();
        }
        let free = self.forecast_pv_kwh(config, now, deadline, config.min_power_kw);
        let mut missing = self.remaining_kwh() - free;
        let mut weak: Vec<(f64, DateTime<Utc>, f64)> = self
            .forecast
            .iter()
            .filter_map(|hour| {
                let end = hour.start + Duration::hours(1);
                let overlap = (end.min(deadline) - hour.start.max(now))
                    .num_seconds()
                    .max(0) as f64
                    / 3600.0;
                let surplus_kw = hour.kwh - config.house_load_kw;
                (overlap > 0.0 && surplus_kw > 0.1 && surplus_kw < config.min_power_kw)
                    .then_some((surplus_kw, hour.start, overlap))
            })
            .collect();
        let in_order: Vec<DateTime<Utc>> = weak.iter().map(|(_, start, _)| *start).collect();
        weak.sort_by(|a, b| b.0.total_cmp(&a.0));
        let mut chosen = Vec::new();
        for (_, start, overlap) in weak {
            if missing <= 0.0 {
                break;
            }
            missing -= config.min_power_kw * overlap;
            chosen.push(start);
        }
        // One stretch, not several: the weak hours between two chosen ones are topped
        // up too (a stop and a restart in between would cost more than they save).
        match (chosen.iter().min(), chosen.iter().max()) {
            (Some(first), Some(last)) => in_order
                .into_iter()
                .filter(|start| first <= start && start <= last)
                .collect(),
            _ => Vec::new(),
        }
    }

    /// The energy the deadline cannot get even at full power from now, kWh (0 when it can).
    pub fn shortfall_kwh(&self, config: &SmartConfig, now: DateTime<Utc>) -> f64 {
        let Some(deadline) = self.plan.as_ref().and_then(|p| p.deadline) else {
            return 0.0;
        };
        let hours = (deadline - now).num_seconds().max(0) as f64 / 3600.0;
        (self.remaining_kwh() - hours * config.max_power_kw).max(0.0)
    }

    /// When the verdict may change by time alone.
    pub fn next_change(&self) -> Option<DateTime<Utc>> {
        if self.grid_on {
            return None;
        }
        [self.grid_from, self.next_review]
            .into_iter()
            .flatten()
            .reduce(DateTime::min)
    }

    /// Smart mode's verdict at `now`.
    pub fn verdict(&mut self, config: &SmartConfig, now: DateTime<Utc>) -> Verdict {
        let remaining = self.remaining_kwh();
        if self.plan.is_none() {
            return Verdict::Surplus("smart: no plan, PV only".into());
        }
        if remaining <= 0.0 {
            self.grid_on = false;
            return Verdict::Surplus("smart: plan met, PV only".into());
        }
        let Some(deadline) = self.deadline(now) else {
            self.grid_on = false;
            return Verdict::Surplus("smart: the deadline has passed, PV only".into());
        };
        if !self.grid_on && self.next_review.is_some_and(|review| now >= review) {
            self.schedule(config, now);
        }
        let hours_left = (deadline - now).num_minutes() as f64 / 60.0;
        if self.grid_on || self.grid_from.is_some_and(|from| now >= from) {
            self.grid_on = true;
            let short = self.shortfall_kwh(config, now);
            let tail = if short > 0.0 {
                format!("; {short:.1} kWh will be missing at the deadline")
            } else {
                String::new()
            };
            // The average power that still finishes a buffer before the deadline, for
            // what the sun is not expected to bring meanwhile (the car takes the sun on
            // top; recomputed at every decision, so a sun that stays away raises it).
            let finish = deadline - config.buffer;
            let usable_h = (finish - now).num_seconds() as f64 / 3600.0;
            let from_grid = (remaining - self.expected_pv_kwh(config, now, finish)).max(0.0);
            let power_w = if usable_h > 0.0 {
                (from_grid * config.margin / usable_h * 1000.0).min(config.max_power_kw * 1000.0)
            } else {
                config.max_power_kw * 1000.0
            };
            return Verdict::Grid {
                power_w,
                reason: format!(
                    "smart: {remaining:.1} kWh needed in {hours_left:.1} h → grid allowed, at least {:.1} kW{tail}",
                    power_w / 1000.0
                ),
            };
        }
        if self.top_up {
            return Verdict::TopUp {
                power_w: config.min_power_kw * 1000.0,
                reason: format!(
                    "smart: {remaining:.1} kWh needed in {hours_left:.1} h, more than the sun's \
                     forecast → the grid tops the sun up to the minimum"
                ),
            };
        }
        let from = self.grid_from.unwrap_or(deadline);
        Verdict::Surplus(format!(
            "smart: {remaining:.1} kWh needed in {hours_left:.1} h, PV only for {:.1} h more",
            (from - now).num_minutes() as f64 / 60.0
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Timelike};

    fn at(hour: u32, minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 6, 1, hour, minute, 0).unwrap()
    }

    fn plan(kwh: f64, deadline: DateTime<Utc>) -> Plan {
        crate::simulation::plan_message(kwh, deadline)
    }

    /// A clear day: `peak_kw` PV at noon, a sine from 6:00 to 20:00, as hourly kWh.
    fn sunny(peak_kw: f64) -> PvForecast {
        let today = (0..24)
            .map(|hour| {
                let mid = hour as f64 + 0.5;
                let kwh = if (6.0..20.0).contains(&mid) {
                    peak_kw * (std::f64::consts::PI * (mid - 6.0) / 14.0).sin()
                } else {
                    0.0
                };
                HourEnergy {
                    start: at(hour, 0),
                    kwh,
                    p10_kwh: None,
                    p90_kwh: None,
                }
            })
            .collect();
        crate::simulation::forecast_message(today)
    }

    fn is_grid(verdict: &Verdict) -> bool {
        matches!(verdict, Verdict::Grid { .. })
    }

    #[test]
    fn without_a_forecast_the_grid_starts_as_late_as_the_deadline_allows() {
        let config = SmartConfig::default();
        let mut smart = Smart::default();
        // 20 kWh at 11.04 kW: 1.81 h × 1.15 + 20 min = 2.42 h before 18:00 → 15:35.
        smart.update_plan(plan(20.0, at(18, 0)), &config, at(8, 0));
        // (time, grid expected)
        let table = [
            (at(8, 0), false),
            (at(15, 30), false),
            (at(15, 35), true),
            (at(16, 0), true),
        ];
        for (now, grid) in table {
            let verdict = smart.verdict(&config, now);
            assert_eq!(is_grid(&verdict), grid, "at {now}: {verdict:?}");
        }
    }

    /// Minute by minute from 8:00 to the deadline: the car takes the sun's surplus
    /// when it carries the minimum, 11 kW while the grid is allowed. Grid kWh, and what
    /// was still missing at the deadline.
    fn day(
        smart: &mut Smart,
        config: &SmartConfig,
        sun: &PvForecast,
        deadline: DateTime<Utc>,
    ) -> (f64, f64) {
        let mut grid_kwh = 0.0;
        let mut now = at(8, 0);
        while now < deadline {
            let hour = sun
                .today
                .iter()
                .find(|h| h.start <= now && now < h.start + Duration::hours(1));
            let surplus_kw = hour.map_or(0.0, |h| h.kwh - config.house_load_kw);
            let from_sun = if surplus_kw >= config.min_power_kw {
                surplus_kw
            } else {
                0.0
            };
            let car_kw = if is_grid(&smart.verdict(config, now)) {
                grid_kwh += (config.max_power_kw - from_sun).max(0.0) / 60.0;
                config.max_power_kw
            } else {
                from_sun.min(config.max_power_kw)
            };
            smart.count(Some(car_kw * 1000.0), now);
            now += Duration::minutes(1);
        }
        smart.count(None, now);
        (grid_kwh, smart.remaining_kwh())
    }

    #[test]
    fn the_sun_expected_before_the_deadline_saves_grid_energy() {
        let config = SmartConfig::default();
        let sun = sunny(6.0);
        let mut blind = Smart::default();
        blind.update_plan(plan(25.0, at(14, 0)), &config, at(8, 0));
        let (blind_grid, blind_missing) = day(&mut blind, &config, &sun, at(14, 0));
        let mut sighted = Smart::default();
        sighted.update_forecast(sun.clone(), &config, at(8, 0));
        sighted.update_plan(plan(25.0, at(14, 0)), &config, at(8, 0));
        let (sighted_grid, sighted_missing) = day(&mut sighted, &config, &sun, at(14, 0));
        println!("grid kWh: without the forecast {blind_grid:.1}, with it {sighted_grid:.1}");
        assert_eq!(
            (blind_missing, sighted_missing),
            (0.0, 0.0),
            "both meet the plan"
        );
        assert!(
            sighted_grid < blind_grid,
            "the forecast must save grid energy: {sighted_grid:.1} vs {blind_grid:.1} kWh"
        );
    }

    /// With pv-forecast's range, a deadline is kept on the P10 (what 9 days in 10 bring
    /// at least), not on a fixed share of the central forecast.
    #[test]
    fn the_deadline_is_kept_on_the_forecast_s_p10_when_there_is_one() {
        let config = SmartConfig::default();
        let with_p10 = |share: f64| {
            let mut forecast = sunny(6.0);
            for hour in &mut forecast.today {
                hour.p10_kwh = Some(hour.kwh * share);
            }
            forecast
        };
        let expected = |forecast: PvForecast| {
            let mut smart = Smart::default();
            smart.update_forecast(forecast, &config, at(8, 0));
            smart.expected_pv_kwh(&config, at(8, 0), at(14, 0))
        };
        let plain = expected(sunny(6.0));
        let sure = expected(with_p10(0.95));
        let unsure = expected(with_p10(0.3));
        assert!(
            unsure < plain && plain < sure,
            "P10 at 30 %: {unsure:.1} kWh; no range ({:.0} % of the forecast): {plain:.1}; P10 at 95 %: {sure:.1}",
            config.pv_confidence * 100.0
        );
    }

    #[test]
    fn the_grid_charge_does_not_flip_flop_and_ends_when_the_plan_is_met() {
        let config = SmartConfig::default();
        let mut smart = Smart::default();
        smart.update_plan(plan(10.0, at(18, 0)), &config, at(8, 0));
        let mut changes = 0;
        let mut grid = false;
        let mut now = at(15, 0);
        let mut met_at = None;
        // Minute by minute; the car draws 11 kW while the grid is allowed.
        while now < at(18, 0) {
            let on = is_grid(&smart.verdict(&config, now));
            if on != grid {
                changes += 1;
                grid = on;
            }
            smart.count(Some(if on { 11040.0 } else { 0.0 }), now);
            if smart.remaining_kwh() == 0.0 && met_at.is_none() {
                met_at = Some(now);
            }
            now += Duration::minutes(1);
        }
        assert_eq!(changes, 2, "one start, one stop");
        assert!(!grid, "stopped once the plan was met");
        assert!(
            met_at.is_some_and(|t| t < at(18, 0)),
            "met before the deadline: {met_at:?}"
        );
    }

    #[test]
    fn an_impossible_deadline_is_said_early_with_the_shortfall() {
        let config = SmartConfig::default();
        let mut smart = Smart::default();
        smart.update_plan(plan(30.0, at(10, 0)), &config, at(8, 0));
        // 2 h × 11.04 kW = 22.08 kWh: 7.9 kWh short.
        assert!((smart.shortfall_kwh(&config, at(8, 0)) - 7.92).abs() < 0.01);
        let verdict = smart.verdict(&config, at(8, 0));
        match verdict {
            Verdict::Grid { reason, power_w } => {
                assert!(reason.contains("7.9 kWh will be missing"), "{reason}");
                assert_eq!(power_w, 11040.0, "all it can");
            }
            other => panic!("must charge at once: {other:?}"),
        }
        let mut easy = Smart::default();
        easy.update_plan(plan(5.0, at(10, 0)), &config, at(8, 0));
        assert_eq!(easy.shortfall_kwh(&config, at(8, 0)), 0.0);
    }

    #[test]
    fn a_new_deadline_restarts_the_count_and_a_known_soc_plan_is_taken_as_is() {
        let config = SmartConfig::default();
        let mut smart = Smart::default();
        smart.update_plan(plan(10.0, at(18, 0)), &config, at(8, 0));
        smart.count(Some(10000.0), at(8, 0));
        smart.count(Some(10000.0), at(8, 30));
        assert!((smart.remaining_kwh() - 5.0).abs() < 1e-9);
        smart.update_plan(plan(10.0, at(18, 0)), &config, at(8, 30));
        assert!(
            (smart.remaining_kwh() - 5.0).abs() < 1e-9,
            "same deadline: progress kept"
        );
        smart.update_plan(plan(10.0, at(19, 0)), &config, at(8, 30));
        assert_eq!(smart.remaining_kwh(), 10.0);
        smart.count(Some(10000.0), at(9, 0));
        smart.update_plan(
            Plan {
                ev_soc: Some(60.0),
                ..plan(4.0, at(19, 0))
            },
            &config,
            at(9, 0),
        );
        assert_eq!(
            smart.remaining_kwh(),
            4.0,
            "the plan counted the car's SoC itself"
        );
    }

    #[test]
    fn the_grid_tops_up_the_sunniest_weak_hours_only_when_the_sun_cannot_do_it_all() {
        let config = SmartConfig::default();
        // A winter day: 1–3 kW of surplus (below the 4.14 kW minimum) from 9:00 to 15:00.
        let weak = [
            (9, 1.5),
            (10, 2.5),
            (11, 3.5),
            (12, 3.5),
            (13, 2.5),
            (14, 1.5),
        ];
        let forecast = crate::simulation::forecast_message(
            weak.iter()
                .map(|&(hour, kw)| HourEnergy {
                    start: at(hour, 0),
                    kwh: kw + config.house_load_kw,
                    p10_kwh: None,
                    p90_kwh: None,
                })
                .collect(),
        );
        // (kWh needed by 17:00, hours topped up)
        let table: [(f64, &[u32]); 4] = [
            (10.0, &[]),               // 15 kWh of sun could do it: wait for it
            (16.0, &[11, 12, 13, 10]), // the sunniest first, as one stretch
            (9.0, &[]),
            (40.0, &[9, 10, 11, 12, 13, 14]),
        ];
        for (kwh, hours) in table {
            let mut smart = Smart::default();
            smart.update_forecast(forecast.clone(), &config, at(6, 0));
            smart.update_plan(plan(kwh, at(17, 0)), &config, at(6, 0));
            let mut got: Vec<u32> = smart
                .top_up_hours(&config, at(6, 0), at(17, 0))
                .iter()
                .map(|start| start.hour())
                .collect();
            got.sort_unstable();
            let mut expected = hours.to_vec();
            expected.sort_unstable();
            assert_eq!(got, expected, "{kwh} kWh by 17:00");
        }
    }
}
