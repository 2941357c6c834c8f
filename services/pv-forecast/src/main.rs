//! pv-forecast: how much energy the roof will make today and tomorrow.
//!
//! Every hour it fetches the weather forecast from Open-Meteo for `HOME_LATITUDE`/
//! `HOME_LONGITUDE`, turns it into kWh per hour for the arrays in `PV_FORECAST_ARRAYS`
//! and publishes `homelab/pv-forecast/updated` plus HA sensors (by MQTT discovery).
//! Every night it retrains a correction on the past days' weather and what the PV
//! meter counted (HA history), and keeps it only when it beats the physics on days
//! it did not see. `backtest` runs the same model on a user's exported history.

mod service;

use clap::Subcommand;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Subcommand, Debug)]
enum Tool {
    /// Measure the model on exported history: nMAE and skill against persistence.
    Backtest {
        /// CSV: interval start, AC power in W (or kW when the header says so).
        #[arg(long)]
        power: PathBuf,
        /// CSV: interval start, ghi [, dni, dhi, temperature, cloud_cover].
        #[arg(long)]
        weather: PathBuf,
        /// Days to train on; every later day is forecast and scored.
        #[arg(long, default_value_t = 28)]
        train_days: usize,
    },
}

fn main() -> ExitCode {
    homelab::run_with_tools::<service::PvForecastService, Tool>(|tool| match tool {
        Tool::Backtest {
            power,
            weather,
            train_days,
        } => backtest(&power, &weather, train_days),
    })
}

/// Site and time zone come from the same settings (env + `.env`) as the service.
fn backtest(power: &PathBuf, weather: &PathBuf, train_days: usize) -> ExitCode {
    let result = (|| -> anyhow::Result<String> {
        let settings = homelab::settings::load::<service::PvForecastSettings>()?;
        let site = settings.service.site()?;
        let zone = settings.common.time_zone()?;
        let read = |path: &PathBuf| {
            std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
        };
        let power =
            pv_forecast::backtest::read_power(&read(power)?, zone).map_err(anyhow::Error::msg)?;
        let weather = pv_forecast::backtest::read_weather(&read(weather)?, zone)
            .map_err(anyhow::Error::msg)?;
        let report = pv_forecast::backtest::run(&site, &power, &weather, train_days)
            .map_err(anyhow::Error::msg)?;
        Ok(report.to_string())
    })();
    match result {
        Ok(report) => {
            println!("{report}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("pv-forecast backtest: {error:#}");
            ExitCode::from(homelab::EXIT_BAD_SETTINGS)
        }
    }
}
