//! From trips to a demand: how much energy the car needs, by when, how urgent.
//! A plan, never a command: smart-ev-charging decides how to deliver it.

use chrono::{DateTime, Datelike, Duration, Utc};

#[derive(Clone, Debug)]
pub struct PlanConfig {
    pub consumption_kwh_per_100km: f64,
    /// Multiplies consumption from November to March (heating, cold battery).
    pub winter_factor: f64,
    /// Kept in the battery on arrival back home.
    pub reserve_kwh: f64,
    pub battery_kwh: f64,
    /// What the wallbox can deliver, for the urgency.
    pub charge_power_kw: f64,
    /// Trips starting this long after the first one are driven on the same charge.
    pub group_hours: f64,
}

impl Default for PlanConfig {
    fn default() -> Self {
        Self {
            consumption_kwh_per_100km: 18.0,
            winter_factor: 1.3,
            reserve_kwh: 5.0,
            battery_kwh: 60.0,
            charge_power_kw: 11.0,
            group_hours: 12.0,
        }
    }
}

pub use homelab::messages::ev_forecast::{DistanceSource, Plan, Trip, Urgency};

fn is_winter(time: DateTime<Utc>) -> bool {
    matches!(time.month(), 11 | 12 | 1 | 2 | 3)
}

/// Energy for the trip there and back.
pub fn trip_energy_kwh(one_way_km: f64, start: DateTime<Utc>, config: &PlanConfig) -> f64 {
    let factor = if is_winter(start) {
        config.winter_factor
    } else {
        1.0
    };
    2.0 * one_way_km * config.consumption_kwh_per_100km / 100.0 * factor
}

fn round2(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

/// The plan for the trips ahead of `now`. The first trip's start is the deadline;
/// it and the trips within `group_hours` after it must fit in the battery now, less
/// what the car already holds (when its SoC is known; unknown counts as empty).
pub fn make_plan(
    mut trips: Vec<Trip>,
    ev_soc: Option<f64>,
    now: DateTime<Utc>,
    config: &PlanConfig,
) -> Plan {
    trips.retain(|trip| trip.start > now);
    trips.sort_by_key(|trip| trip.start);
    for trip in &mut trips {
        let beyond = trip.energy_kwh + config.reserve_kwh - config.battery_kwh;
        trip.fits_one_charge = beyond <= 0.0;
        trip.shortfall_kwh = round2(beyond.max(0.0));
    }
    let Some(first) = trips.first().map(|t| t.start) else {
        return Plan {
            energy_needed_kwh: 0.0,
            deadline: None,
            urgency: Urgency::None,
            trips,
            ev_soc,
            shortfall_kwh: 0.0,
            warning: None,
        };
    };
    let group_end = first + Duration::seconds((config.group_hours * 3600.0) as i64);
    let trips_energy: f64 = trips
        .iter()
        .filter(|t| t.start <= group_end)
        .map(|t| t.energy_kwh)
        .sum();
    let held = ev_soc.map_or(0.0, |soc| {
        soc.clamp(0.0, 100.0) / 100.0 * config.battery_kwh
    });
    // The car takes at most what its battery has room for: a longer trip means a
    // full battery now and a charge on the way, said in the plan.
    let needed = (trips_energy + config.reserve_kwh - held).clamp(0.0, config.battery_kwh - held);
    let needed = if trips_energy == 0.0 { 0.0 } else { needed };
    let shortfall = if trips_energy == 0.0 {
        0.0
    } else {
        (trips_energy + config.reserve_kwh - config.battery_kwh).max(0.0)
    };
    let warning = (shortfall > 0.0).then(|| {
        let grouped: Vec<&str> = trips
            .iter()
            .filter(|t| t.start <= group_end)
            .map(|t| t.summary.as_str())
            .collect();
        format!(
            "{} from {} needs {:.0} kWh with the reserve, the battery holds {:.0}: charge on the way ({:.0} kWh short)",
            grouped.join(" + "),
            first.format("%a %d %b %H:%M UTC"),
            trips_energy + config.reserve_kwh,
            config.battery_kwh,
            shortfall
        )
    });
    let hours_left = (first - now).num_seconds() as f64 / 3600.0;
    let slack = hours_left - needed / config.charge_power_kw.max(0.1);
    let urgency = if needed <= 0.0 {
        Urgency::None
    } else if slack < 1.0 || shortfall > 0.0 {
        Urgency::High
    } else if slack < 6.0 {
        Urgency::Medium
    } else {
        Urgency::Low
    };
    Plan {
        energy_needed_kwh: round2(needed),
        deadline: Some(first),
        urgency,
        trips,
        ev_soc,
        shortfall_kwh: round2(shortfall),
        warning,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn trip(hours_from_now: i64, energy: f64) -> Trip {
        Trip {
            summary: "trip".into(),
            destination: Some("somewhere".into()),
            start: now() + Duration::hours(hours_from_now),
            distance_km: Some(energy),
            distance_source: DistanceSource::Table,
            energy_kwh: energy,
            fits_one_charge: true,
            shortfall_kwh: 0.0,
        }
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 6, 1, 18, 0, 0).unwrap()
    }

    #[test]
    fn energy_is_there_and_back_and_more_in_winter() {
        let config = PlanConfig::default();
        let summer = Utc.with_ymd_and_hms(2026, 7, 1, 8, 0, 0).unwrap();
        let winter = Utc.with_ymd_and_hms(2026, 1, 15, 8, 0, 0).unwrap();
        assert!((trip_energy_kwh(50.0, summer, &config) - 18.0).abs() < 1e-9);
        assert!((trip_energy_kwh(50.0, winter, &config) - 18.0 * 1.3).abs() < 1e-9);
    }

    #[test]
    fn the_deadline_is_the_first_departure_and_same_day_trips_add_up() {
        let config = PlanConfig::default();
        let plan = make_plan(
            vec![trip(30, 4.0), trip(14, 10.0), trip(16, 6.0), trip(-2, 50.0)],
            None,
            now(),
            &config,
        );
        assert_eq!(plan.deadline, Some(now() + Duration::hours(14)));
        // 10 + 6 (within 12 h of the first) + 5 reserve; the trip 30 h out is later; the past one is gone.
        assert_eq!(plan.energy_needed_kwh, 21.0);
        assert_eq!(plan.trips.len(), 3);
        assert_eq!(plan.urgency, Urgency::Low, "14 h for 21 kWh at 11 kW");
    }

    #[test]
    fn what_the_car_holds_is_subtracted_and_a_full_car_needs_nothing() {
        let config = PlanConfig::default();
        let half = make_plan(vec![trip(10, 20.0)], Some(25.0), now(), &config);
        assert_eq!(half.energy_needed_kwh, 10.0, "20 + 5 reserve − 15 held");
        let full = make_plan(vec![trip(10, 20.0)], Some(90.0), now(), &config);
        assert_eq!((full.energy_needed_kwh, full.urgency), (0.0, Urgency::None));
    }

    #[test]
    fn urgency_grows_as_the_slack_shrinks_and_the_need_is_capped_by_the_battery() {
        let config = PlanConfig::default();
        assert_eq!(
            make_plan(vec![trip(4, 20.0)], None, now(), &config).urgency,
            Urgency::Medium
        );
        assert_eq!(
            make_plan(vec![trip(2, 30.0)], None, now(), &config).urgency,
            Urgency::High
        );
        let long = make_plan(vec![trip(20, 200.0)], None, now(), &config);
        assert_eq!(long.energy_needed_kwh, 60.0);
    }

    /// A trip longer than the battery: the plan asks for a full battery (not more than
    /// it has room for), says what is missing, and is urgent however far away it is.
    #[test]
    fn a_trip_beyond_one_charge_is_flagged_with_its_shortfall() {
        let config = PlanConfig::default();
        let mut fair = trip(12, 149.0);
        fair.summary = "Messe München".into();
        let plan = make_plan(vec![fair.clone()], Some(50.0), now(), &config);
        assert_eq!(
            plan.energy_needed_kwh, 30.0,
            "room in the battery: 60 − 30 held"
        );
        assert_eq!(plan.shortfall_kwh, 94.0, "149 + 5 reserve − 60");
        assert_eq!(plan.urgency, Urgency::High);
        assert_eq!(
            (plan.trips[0].fits_one_charge, plan.trips[0].shortfall_kwh),
            (false, 94.0),
            "said per trip too"
        );
        assert_eq!(
            plan.warning.as_deref(),
            Some("Messe München from Tue 02 Jun 06:00 UTC needs 154 kWh with the reserve, the battery holds 60: charge on the way (94 kWh short)")
        );
        let far = make_plan(vec![trip(100, 149.0)], None, now(), &config);
        assert_eq!((far.urgency, far.energy_needed_kwh), (Urgency::High, 60.0));
        let fits = make_plan(vec![trip(12, 55.0)], None, now(), &config);
        assert_eq!(
            (fits.shortfall_kwh, fits.warning),
            (0.0, None),
            "55 + 5 fits in 60"
        );
        assert!(fits.trips[0].fits_one_charge);
        // Two trips that each fit but not together: the plan says so, each trip does not.
        let day = make_plan(vec![trip(12, 40.0), trip(15, 40.0)], None, now(), &config);
        assert_eq!(day.shortfall_kwh, 25.0, "40 + 40 + 5 − 60");
        assert!(day.trips.iter().all(|t| t.fits_one_charge));
    }

    #[test]
    fn no_trips_or_trips_of_no_distance_need_nothing() {
        let config = PlanConfig::default();
        let empty = make_plan(vec![], None, now(), &config);
        assert_eq!(
            (empty.energy_needed_kwh, empty.deadline, empty.urgency),
            (0.0, None, Urgency::None)
        );
        let next_door = make_plan(vec![trip(5, 0.0)], None, now(), &config);
        assert_eq!(
            next_door.energy_needed_kwh, 0.0,
            "no reserve charged for a trip of 0 km (a table entry `Neighbours=0`)"
        );
    }
}
