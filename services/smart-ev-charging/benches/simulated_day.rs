//! Replays a sunny, a passing-clouds and a winter day (per-minute PV and house load,
//! meters every 10 s, no home battery so that the battery policy does not colour the
//! comparison) through our decisions and, in the same process, through a reference
//! implementation of evcc's documented pv rules (`simulation::EvccReference`).
//! "ours, 3p, 0 W" is ours without the 100 W grid reserve, as evcc has none by default.
//! Then smart mode's grid energy, with and without pv-forecast's hours, against the
//! least any controller with the same 6–16 A on three phases could need with perfect
//! knowledge of the day (`simulation::perfect_grid_kwh`).
//! `cargo bench -p smart-ev-charging`.

use chrono::TimeZone;
use smart_ev_charging::control::{Config, Controller, Mode};
use smart_ev_charging::plan::{Smart, SmartConfig};
use smart_ev_charging::simulation::{
    day_profile, hourly_forecast, perfect_grid_kwh, plan_message, replay, Charger, EvccReference,
    Ours, Replay, SmartCharger,
};

const STEP_S: f64 = 10.0;

fn row(day: &str, who: &str, r: &Replay) {
    println!(
        "{day:<15} {who:<16} {:>8.1} {:>8.1} {:>6.0}% {:>9.2} {:>7} {:>7}",
        r.car_kwh,
        r.car_pv_kwh,
        100.0 * r.pv_share(),
        r.import_kwh,
        r.on_off,
        r.phase_switches
    );
}

fn ours(config: Config) -> Ours {
    Ours {
        controller: Controller::default(),
        mode: Mode::Pv,
        config,
    }
}

fn main() {
    let days = [
        ("sunny", day_profile(8.0, 0.1, 3)),
        ("passing clouds", day_profile(8.0, 0.5, 42)),
        ("winter", day_profile(3.0, 0.3, 5)),
    ];
    println!(
        "{:<15} {:<16} {:>8} {:>8} {:>7} {:>9} {:>7} {:>7}",
        "day", "controller", "car kWh", "from PV", "share", "import", "on/off", "phase sw"
    );
    let switching = Config {
        phase_switching: true,
        ..Config::default()
    };
    for (day, profile) in &days {
        let no_reserve = Config {
            grid_reserve_w: 0.0,
            ..Config::default()
        };
        let runs: [(&str, &mut dyn Charger); 4] = [
            ("evcc reference", &mut EvccReference::default()),
            ("ours, 3p", &mut ours(Config::default())),
            ("ours, 3p, 0 W", &mut ours(no_reserve)),
            ("ours, 1p/3p", &mut ours(switching.clone())),
        ];
        for (who, charger) in runs {
            row(day, who, &replay(profile, charger, STEP_S, 0.0, 0.0));
        }
    }

    println!();
    println!(
        "{:<15} {:<22} {:>9} {:>9} {:>9} {:>17}",
        "smart day", "plan", "grid kWh", "perfect", "missing", "stops before met"
    );
    let midnight = chrono::Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap();
    for (day, profile) in &days {
        for (energy, deadline_h) in [(20.0, 17), (30.0, 13)] {
            for with_forecast in [false, true] {
                let deadline = midnight + chrono::Duration::hours(deadline_h);
                let smart_config = SmartConfig::default();
                let mut smart = Smart::default();
                let start = midnight + chrono::Duration::hours(6);
                if with_forecast {
                    smart.update_forecast(hourly_forecast(profile, midnight), &smart_config, start);
                }
                smart.update_plan(plan_message(energy, deadline), &smart_config, start);
                let mut charger = SmartCharger {
                    smart,
                    smart_config,
                    controller: Controller::default(),
                    config: Config::default(),
                    midnight,
                };
                let until = (deadline_h * 60) as usize;
                let result = replay(&profile[..until], &mut charger, STEP_S, 0.0, 0.0);
                let perfect = perfect_grid_kwh(
                    profile,
                    energy,
                    f64::from(deadline_h as u32) * 3600.0,
                    4140.0,
                    11040.0,
                );
                let label = format!(
                    "{energy} kWh by {deadline_h}:00{}",
                    if with_forecast { ", forecast" } else { "" }
                );
                println!(
                    "{day:<15} {label:<22} {:>9.1} {:>9.1} {:>9.1} {:>17}",
                    result.import_kwh,
                    perfect,
                    (energy - result.car_kwh).max(0.0),
                    result
                        .stops_at_kwh
                        .iter()
                        .filter(|kwh| **kwh < energy - 0.01)
                        .count()
                );
            }
        }
    }
}
