//! Prints what each mode does over simulated days (8 kWp, or 3 kWp on the winter day; 10 kWh battery starting at
//! 20 %): the share of PV surplus that went into the car, the grid import caused, and
//! the number of charger starts/stops. `cargo bench -p smart-ev-charging`.

use smart_ev_charging::control::{Config, Mode};
use smart_ev_charging::simulation::{day_profile, simulate};

fn main() {
    let days = [
        ("sunny", 8.0, 0.1, 3),
        ("cloudy", 8.0, 0.5, 42),
        ("overcast", 8.0, 0.9, 9),
        ("winter", 3.0, 0.3, 5),
    ];
    let phase_switching = Config {
        phase_switching: true,
        ..Config::default()
    };
    let no_hysteresis = Config {
        enable_delay_s: 0.0,
        disable_delay_s: 0.0,
        min_command_interval_s: 0.0,
        ..Config::default()
    };
    println!(
        "{:<9} {:<17} {:>8} {:>8} {:>7} {:>10} {:>9}",
        "day", "mode", "surplus", "car kWh", "share", "import kWh", "switches"
    );
    for (name, kwp, cloudiness, seed) in days {
        let profile = day_profile(kwp, cloudiness, seed);
        for (label, mode, config) in [
            ("pv", Mode::Pv, Config::default()),
            ("pv, no hysteresis", Mode::Pv, no_hysteresis.clone()),
            ("pv, 1p/3p", Mode::Pv, phase_switching.clone()),
            ("min_pv", Mode::MinPv, Config::default()),
        ] {
            let day = simulate(&profile, mode, &config, 20.0);
            println!(
                "{name:<9} {label:<17} {:>8.1} {:>8.1} {:>7.2} {:>10.2} {:>9}",
                day.surplus_kwh,
                day.car_total_kwh,
                day.share_into_car(),
                day.import_caused_kwh,
                day.switches
            );
        }
    }
}
