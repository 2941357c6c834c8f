//! The forecast error on held-out days, printed: `cargo bench -p pv-forecast`.
//! The roof is synthetic (tests/common/synthetic.rs); the figures measure the model
//! against the physics alone and against "same hour yesterday", not a real roof.

#[path = "../tests/common/synthetic.rs"]
mod synthetic;

use pv_forecast::backtest;

fn main() {
    let zone: chrono_tz::Tz = "Europe/Berlin".parse().unwrap();
    for (days, train_days, seed) in [(60, 28, 1), (60, 14, 2), (90, 60, 3)] {
        let (power, weather) = synthetic::history(days, seed);
        let power = backtest::read_power("power.csv", &power, zone)
            .unwrap()
            .value;
        let weather = backtest::read_weather("weather.csv", &weather, zone)
            .unwrap()
            .value;
        let started = std::time::Instant::now();
        let report = backtest::run(&synthetic::site(), &power, &weather, train_days, zone)
            .unwrap()
            .report;
        println!(
            "--- synthetic roof, {days} days, seed {seed} ({} ms)",
            started.elapsed().as_millis()
        );
        println!("{report}\n");
    }
}
