//! The forecast error on tested days, printed: `cargo bench -p pv-forecast`.
//! The roofs are synthetic (tests/common/synthetic.rs); the figures measure the model
//! against the physics alone and against "same hour yesterday", not a real roof.
//! Each case runs twice in the same process: with the roof as entered (calibration
//! off, the reference) and with the roof fitted to the meter.

#[path = "../tests/common/synthetic.rs"]
mod synthetic;

use pv_forecast::backtest;
use pv_forecast::model::Site;
use pv_forecast::solar::Array;

fn roof(tilt: f64, azimuth: f64) -> Site {
    Site {
        arrays: vec![Array {
            kwp: 6.0,
            tilt_deg: tilt,
            azimuth_deg: azimuth,
            ac_kw: None,
        }],
        ..synthetic::site()
    }
}

fn main() {
    let zone: chrono_tz::Tz = "Europe/Berlin".parse().unwrap();
    let cases = [
        (
            "entered right (6/35/170)",
            synthetic::site(),
            synthetic::site(),
            60,
            28,
            1,
        ),
        (
            "entered right, 90 days",
            synthetic::site(),
            synthetic::site(),
            90,
            60,
            3,
        ),
        // The case: people rarely know their azimuth to 20°.
        (
            "real 25/205, entered 40/180",
            roof(25.0, 205.0),
            roof(40.0, 180.0),
            60,
            28,
            4,
        ),
        (
            "real 20/155, entered 35/180",
            roof(20.0, 155.0),
            roof(35.0, 180.0),
            60,
            28,
            5,
        ),
    ];
    println!("pv-forecast backtest on synthetic roofs (nMAE over scored daylight hours)");
    for (name, real, entered, days, train_days, seed) in cases {
        let (power, weather) = synthetic::history_of(&real, days, seed);
        let power = backtest::read_power("power.csv", &power, zone)
            .unwrap()
            .value;
        let weather = backtest::read_weather("weather.csv", &weather, zone)
            .unwrap()
            .value;
        let started = std::time::Instant::now();
        let reference = backtest::run(&entered, &power, &weather, train_days, usize::MAX, zone)
            .unwrap()
            .report;
        let fitted = backtest::run(&entered, &power, &weather, train_days, 14, zone)
            .unwrap()
            .report;
        println!(
            "--- {name}: {days} days, {train_days} to train, seed {seed} ({} ms)",
            started.elapsed().as_millis()
        );
        println!(
            "  roof as entered: model nMAE {:.3}, skill vs persistence {:+.3} ({})",
            reference.model_nmae(),
            reference.skill_vs_persistence(),
            reference.model_kind
        );
        println!(
            "  roof fitted:     model nMAE {:.3}, skill vs persistence {:+.3} ({})",
            fitted.model_nmae(),
            fitted.skill_vs_persistence(),
            fitted.model_kind
        );
        println!("  {}", fitted.roof);
        println!("  {}", fitted.correction);
    }
}
