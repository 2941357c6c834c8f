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
use std::io::Write;
use std::path::{Path, PathBuf};
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
        /// Fit the roof to the meter from this many training days (as the service's
        /// PV_FORECAST_CALIBRATION_DAYS); more than --train-days keeps the roof as entered.
        #[arg(long, default_value_t = 14)]
        calibration_days: usize,
        /// Also write every tested hour (time, forecast, actual, physics-only,
        /// persistence, scored) to this CSV file.
        #[arg(long, value_name = "FILE")]
        predictions: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    homelab::run_with_tools::<service::PvForecastService, Tool>(|tool| match tool {
        Tool::Backtest {
            power,
            weather,
            train_days,
            calibration_days,
            predictions,
        } => backtest(
            &power,
            &weather,
            (train_days, calibration_days),
            predictions.as_deref(),
        ),
    })
}

/// Site and time zone come from the same settings (env + `.env`) as the service.
fn backtest(
    power: &Path,
    weather: &Path,
    (train_days, calibration_days): (usize, usize),
    predictions: Option<&Path>,
) -> ExitCode {
    let result = (|| -> anyhow::Result<String> {
        let settings = homelab::settings::load::<service::PvForecastSettings>()?;
        let site = settings.service.site()?;
        let zone = settings.common.time_zone()?;
        let read = |path: &Path| {
            std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
        };
        let power =
            pv_forecast::backtest::read_power(&power.display().to_string(), &read(power)?, zone)
                .map_err(anyhow::Error::msg)?;
        let weather = pv_forecast::backtest::read_weather(
            &weather.display().to_string(),
            &read(weather)?,
            zone,
        )
        .map_err(anyhow::Error::msg)?;
        for warning in power.warnings.iter().chain(&weather.warnings) {
            eprintln!("pv-forecast backtest: warning: {warning}");
        }
        let backtest = pv_forecast::backtest::run(
            &site,
            &power.value,
            &weather.value,
            train_days,
            calibration_days,
            zone,
        )
        .map_err(anyhow::Error::msg)?;
        if let Some(path) = predictions {
            std::fs::write(
                path,
                pv_forecast::backtest::predictions_csv(&backtest.predictions),
            )
            .map_err(|e| anyhow::anyhow!("--predictions {}: {e}", path.display()))?;
        }
        Ok(backtest.report.to_string())
    })();
    match result {
        Ok(report) => {
            // A reader that stops early (`| head`) is not an error.
            let mut out = std::io::stdout().lock();
            match writeln!(out, "{report}").and_then(|()| out.flush()) {
                Err(error) if error.kind() != std::io::ErrorKind::BrokenPipe => {
                    eprintln!("pv-forecast backtest: {error}");
                    ExitCode::FAILURE
                }
                _ => ExitCode::SUCCESS,
            }
        }
        Err(error) => {
            eprintln!("pv-forecast backtest: {error:#}");
            ExitCode::from(homelab::EXIT_BAD_SETTINGS)
        }
    }
}
