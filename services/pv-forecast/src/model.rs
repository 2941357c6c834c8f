//! The forecast model: a physical baseline that works from the first day, and a
//! learned correction (ridge regression, smartcore) once there is history.
//!
//! The correction predicts the baseline's error from a few features that scale with
//! the baseline (cloud cover, temperature, sun height), so that it is zero at night
//! and shrinks towards "trust the physics" when the history says little. It is only
//! kept when cross-validation over days shows it beats the baseline by a margin.

use crate::solar::{self, Array};
use crate::weather::WeatherHour;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use smartcore::linalg::basic::arrays::Array as _;
use smartcore::linalg::basic::matrix::DenseMatrix;
use smartcore::linear::ridge_regression::{RidgeRegression, RidgeRegressionParameters};
use std::collections::BTreeSet;

/// Losses between the modules' rated power and the meter (inverter, wiring, soiling).
const SYSTEM_EFFICIENCY: f64 = 0.86;
/// Air temperature assumed when the weather source gives none.
const DEFAULT_TEMPERATURE_C: f64 = 12.0;
const RIDGE_ALPHA: f64 = 1.0;
/// Day-folds of the cross-validation that judges the correction.
const FOLDS: usize = 5;
/// The correction is kept only when it cuts the cross-validated error by this much.
pub const ADOPTION_MARGIN: f64 = 0.03;

/// The place and its arrays.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Site {
    pub latitude: f64,
    pub longitude: f64,
    pub arrays: Vec<Array>,
    /// Days added to every time before the sun is placed: 0 for a real roof; a
    /// demo whose simulated sky is another season's sets it (`PV_FORECAST_SUN_DATE`).
    #[serde(default)]
    pub sun_shift_days: i64,
}

impl Site {
    pub fn kwp(&self) -> f64 {
        self.arrays.iter().map(|a| a.kwp).sum()
    }

    /// Where the sun is in the middle of the hour starting at `start`.
    pub fn sun_in_hour(&self, start: DateTime<Utc>) -> solar::SunPosition {
        solar::sun_position(
            start + Duration::minutes(30) + Duration::days(self.sun_shift_days),
            self.latitude,
            self.longitude,
        )
    }
}

/// The physical estimate of the energy (kWh) the hour starting at `hour.start` yields.
pub fn baseline_kwh(site: &Site, hour: &WeatherHour) -> f64 {
    let sun = site.sun_in_hour(hour.start);
    let irradiance = match (hour.dni, hour.dhi) {
        (Some(dni), Some(dhi)) if sun.is_up() => solar::Irradiance {
            ghi: hour.ghi.max(0.0),
            dni: dni.max(0.0),
            dhi: dhi.max(0.0),
        },
        _ => solar::split_global(hour.ghi, &sun),
    };
    let temperature = hour.temperature_c.unwrap_or(DEFAULT_TEMPERATURE_C);
    site.arrays
        .iter()
        .map(|array| {
            let poa = solar::plane_of_array(&irradiance, &sun, array);
            let dc = array.kwp * poa / 1000.0
                * solar::temperature_factor(temperature, poa)
                * SYSTEM_EFFICIENCY;
            // An hour's mean power is capped by the inverter, and so is its energy.
            array.ac_kw.map_or(dc, |ac| dc.min(ac))
        })
        .sum()
}

/// 0 clear .. 1 overcast: the weather source's cloud cover, else how far the hour's
/// GHI falls below a clear sky's; a fixed half only with the sun too low to tell.
pub fn cloudiness(site: &Site, hour: &WeatherHour) -> f64 {
    hour.cloud_cover
        .map(|cover| cover / 100.0)
        .or_else(|| {
            crate::calibrate::clear_sky_index(site, hour).map(|index| (1.0 - index).clamp(0.0, 1.0))
        })
        .unwrap_or(0.5)
}

fn features(site: &Site, hour: &WeatherHour, baseline: f64) -> Vec<f64> {
    let sun = site.sun_in_hour(hour.start);
    let cloud = cloudiness(site, hour);
    let temperature = (hour.temperature_c.unwrap_or(DEFAULT_TEMPERATURE_C) - 15.0) / 10.0;
    vec![
        baseline,
        baseline * cloud,
        baseline * temperature,
        baseline * (1.0 - sun.cos_zenith().max(0.0)),
    ]
}

/// The learned part: residual = coefficients · features.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Correction {
    pub coefficients: Vec<f64>,
}

/// Mean absolute error (kWh per hour) and the same normalised by the energy produced.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Error {
    pub mae_kwh: f64,
    pub nmae: f64,
    pub hours: usize,
}

impl From<Error> for homelab::messages::pv_forecast::ForecastError {
    fn from(error: Error) -> Self {
        Self {
            mae_kwh: error.mae_kwh,
            nmae: error.nmae,
            hours: error.hours,
        }
    }
}

impl Error {
    /// Over exactly the (predicted, actual) pairs given; `None` without any energy.
    pub fn over(pairs: &[(f64, f64)]) -> Option<Self> {
        let absolute: f64 = pairs.iter().map(|(p, a)| (p - a).abs()).sum();
        let energy: f64 = pairs.iter().map(|(_, a)| a).sum();
        (!pairs.is_empty() && energy > 0.0).then(|| Self {
            mae_kwh: absolute / pairs.len() as f64,
            nmae: absolute / energy,
            hours: pairs.len(),
        })
    }
}

/// What a training found, for the logs, MQTT and the state file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainingReport {
    pub trained_at: DateTime<Utc>,
    pub training_days: usize,
    pub hold_out_days: usize,
    pub training_error: Option<Error>,
    /// The learned model on the held-out days.
    pub hold_out_error: Option<Error>,
    /// The physical baseline on the same held-out days.
    pub baseline_hold_out_error: Option<Error>,
    /// Whether the correction is used (it beat the baseline on the held-out days).
    pub adopted: bool,
    /// Why not, when it is not.
    pub note: Option<String>,
    /// The roof as fitted to the meter, or why it was not fitted.
    #[serde(default)]
    pub calibration_note: Option<String>,
}

/// A training sample: the weather of an hour and what the meter counted.
#[derive(Clone, Debug)]
pub struct Sample {
    pub weather: WeatherHour,
    pub actual_kwh: f64,
}

/// The model a forecast is made with.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Model {
    pub correction: Option<Correction>,
    pub report: Option<TrainingReport>,
    /// The roof fitted to the meter's clear hours; applied to the entered site.
    #[serde(default)]
    pub calibration: Option<crate::calibrate::Calibration>,
    /// How far off the model was on held-out hours, by sky: P10/P90.
    #[serde(default)]
    pub quantiles: Option<crate::uncertainty::Quantiles>,
}

impl Model {
    /// `"learned"` when a correction is in use, else `"physical"`.
    pub fn kind(&self) -> &'static str {
        if self.correction.is_some() {
            "learned"
        } else {
            "physical"
        }
    }

    pub fn predict_kwh(&self, site: &Site, hour: &WeatherHour) -> f64 {
        let fitted;
        let site = match &self.calibration {
            Some(calibration) => {
                fitted = calibration.apply(site);
                &fitted
            }
            None => site,
        };
        let baseline = baseline_kwh(site, hour);
        let Some(correction) = &self.correction else {
            return baseline;
        };
        if baseline <= 0.0 {
            return 0.0;
        }
        let residual: f64 = features(site, hour, baseline)
            .iter()
            .zip(&correction.coefficients)
            .map(|(x, w)| x * w)
            .sum();
        (baseline + residual).clamp(0.0, site.kwp())
    }

    /// Trains on `samples`: from `calibration_days` days of history the roof is first
    /// fitted to the meter's clear hours; then the correction is judged by day-folds.
    /// Fewer than `min_days` days keep the baseline.
    pub fn train(
        site: &Site,
        samples: &[Sample],
        min_days: usize,
        calibration_days: usize,
        now: DateTime<Utc>,
    ) -> Self {
        let day_count = samples
            .iter()
            .map(|s| s.weather.start.date_naive())
            .collect::<BTreeSet<_>>()
            .len();
        let (calibration, calibration_note) = if day_count < calibration_days.max(1) {
            (
                None,
                format!("roof as entered: {day_count} day(s) of history, {calibration_days} needed to fit it"),
            )
        } else {
            match crate::calibrate::calibrate(site, samples) {
                Ok(fitted) => {
                    let note = format!("roof fitted: {}", fitted.describe(site));
                    (Some(fitted), note)
                }
                Err(reason) => (None, format!("roof as entered: {reason}")),
            }
        };
        let fitted_site = calibration
            .as_ref()
            .map_or_else(|| site.clone(), |c| c.apply(site));
        let mut model = Self::train_on(&fitted_site, samples, min_days, now);
        if let Some(report) = &mut model.report {
            report.calibration_note = Some(calibration_note);
        }
        model.calibration = calibration;
        model
    }

    fn train_on(site: &Site, samples: &[Sample], min_days: usize, now: DateTime<Utc>) -> Self {
        let days: BTreeSet<NaiveDate> = samples
            .iter()
            .map(|s| s.weather.start.date_naive())
            .collect();
        let days: Vec<NaiveDate> = days.into_iter().collect();
        let report = |training_days, hold_out_days, note: String| TrainingReport {
            trained_at: now,
            training_days,
            hold_out_days,
            training_error: None,
            hold_out_error: None,
            baseline_hold_out_error: None,
            adopted: false,
            note: Some(note),
            calibration_note: None,
        };
        if days.len() < min_days.max(2) {
            return Self {
                correction: None,
                report: Some(report(
                    days.len(),
                    0,
                    format!(
                        "{} day(s) of history, {} needed: physical model",
                        days.len(),
                        min_days.max(2)
                    ),
                )),
                calibration: None,
                quantiles: None,
            };
        }
        // k-fold cross-validation over whole days (interleaved, so every fold spans
        // the season): each fold is predicted by a correction fitted without it.
        let folds = FOLDS.min(days.len());
        let fold_of = |sample: &Sample| {
            days.binary_search(&sample.weather.start.date_naive())
                .unwrap_or(0)
                % folds
        };
        let physical = Self::default();
        let mut learned_pairs = Vec::new();
        let mut physical_pairs = Vec::new();
        let mut held_weather: Vec<&WeatherHour> = Vec::new();
        let mut folds_won = 0;
        for fold in 0..folds {
            let (held, rest): (Vec<&Sample>, Vec<&Sample>) =
                samples.iter().partition(|s| fold_of(s) == fold);
            let correction = match fit(site, &rest) {
                Ok(correction) => correction,
                Err(error) => {
                    return Self {
                        correction: None,
                        report: Some(report(days.len(), 0, format!("fit failed: {error}"))),
                        calibration: None,
                        quantiles: None,
                    }
                }
            };
            let learned = Self {
                correction: Some(correction),
                report: None,
                calibration: None,
                quantiles: None,
            };
            let (mut fold_learned, mut fold_physical) = (0.0, 0.0);
            for sample in held.iter().filter(|s| is_scored(site, s)) {
                let by_learned = learned.predict_kwh(site, &sample.weather);
                let by_physics = physical.predict_kwh(site, &sample.weather);
                fold_learned += (by_learned - sample.actual_kwh).abs();
                fold_physical += (by_physics - sample.actual_kwh).abs();
                learned_pairs.push((by_learned, sample.actual_kwh));
                physical_pairs.push((by_physics, sample.actual_kwh));
                held_weather.push(&sample.weather);
            }
            if fold_learned < fold_physical {
                folds_won += 1;
            }
        }
        let hold_out_error = Error::over(&learned_pairs);
        let baseline_hold_out_error = Error::over(&physical_pairs);
        let improvement = match (hold_out_error, baseline_hold_out_error) {
            (Some(learned), Some(physics)) if physics.mae_kwh > 0.0 => {
                1.0 - learned.mae_kwh / physics.mae_kwh
            }
            _ => 0.0,
        };
        // A margin, and most folds: a correction that wins by noise is not kept.
        let adopted = improvement >= ADOPTION_MARGIN && folds_won * 2 > folds;
        let all: Vec<&Sample> = samples.iter().collect();
        let correction = if adopted { fit(site, &all).ok() } else { None };
        let adopted = correction.is_some();
        let learned = Self {
            correction: correction.clone(),
            report: None,
            calibration: None,
            quantiles: None,
        };
        // The range comes from the errors of the predictor now in use, on held-out days.
        let in_use = if adopted {
            &learned_pairs
        } else {
            &physical_pairs
        };
        let quantiles = crate::uncertainty::Quantiles::learn(
            site,
            held_weather
                .iter()
                .zip(in_use)
                .map(|(weather, (predicted, actual))| (*weather, *predicted, *actual)),
        );
        let verdict = if adopted { "kept" } else { "dropped" };
        let report = TrainingReport {
            trained_at: now,
            training_days: days.len(),
            hold_out_days: days.len(),
            training_error: Error::over(
                &samples
                    .iter()
                    .filter(|s| is_scored(site, s))
                    .map(|s| (learned.predict_kwh(site, &s.weather), s.actual_kwh))
                    .collect::<Vec<_>>(),
            ),
            hold_out_error,
            baseline_hold_out_error,
            adopted,
            note: Some(format!(
                "correction {verdict}: {:+.1} % error against the physics over {folds} day-folds (won {folds_won} of {folds}; kept only from {:.0} % better and most folds won)",
                -improvement * 100.0,
                ADOPTION_MARGIN * 100.0
            )),
            calibration_note: None,
        };
        Self {
            correction,
            report: Some(report),
            calibration: None,
            quantiles,
        }
    }

    /// (P10, P90) kWh for an hour forecast at `kwh`, when held-out history gave a range.
    pub fn range(&self, site: &Site, hour: &WeatherHour, kwh: f64) -> Option<(f64, f64)> {
        let (p10, _, p90) = self.quantiles.as_ref()?.range(site, hour, kwh);
        Some((p10, p90))
    }
}

/// An hour counts in an error when the sun is above the horizon at its middle: the
/// same hours for every predictor.
pub fn is_scored(site: &Site, sample: &Sample) -> bool {
    site.sun_in_hour(sample.weather.start).is_up()
}

fn fit(site: &Site, samples: &[&Sample]) -> Result<Correction, String> {
    let mut rows = Vec::new();
    let mut residuals = Vec::new();
    for sample in samples {
        let baseline = baseline_kwh(site, &sample.weather);
        if baseline <= 0.0 {
            continue;
        }
        rows.push(features(site, &sample.weather, baseline));
        residuals.push(sample.actual_kwh - baseline);
    }
    if rows.len() < 24 {
        return Err(format!("{} daylight hours are too few", rows.len()));
    }
    let x = DenseMatrix::from_2d_vec(&rows).map_err(|e| e.to_string())?;
    // No intercept (normalize = false): no light, no correction; the ridge penalty
    // pulls the correction towards zero, i.e. towards the physical baseline.
    let parameters = RidgeRegressionParameters::default()
        .with_alpha(RIDGE_ALPHA)
        .with_normalize(false);
    let fitted: RidgeRegression<f64, f64, DenseMatrix<f64>, Vec<f64>> =
        RidgeRegression::fit(&x, &residuals, parameters).map_err(|e| e.to_string())?;
    let coefficients = fitted.coefficients();
    Ok(Correction {
        coefficients: (0..rows[0].len())
            .map(|i| *coefficients.get((i, 0)))
            .collect(),
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use chrono::{TimeZone, Timelike};

    /// 8 kWp facing south at 30°, near Münster: the roof the module tests share.
    pub(crate) fn site() -> Site {
        Site {
            latitude: 52.0,
            longitude: 7.6,
            sun_shift_days: 0,
            arrays: vec![Array {
                kwp: 8.0,
                tilt_deg: 30.0,
                azimuth_deg: 180.0,
                ac_kw: None,
            }],
        }
    }

    /// A demo's midsummer sky on a November date: the sun must be placed in June too,
    /// or a low sun under a high-sun sky makes impossible hours.
    #[test]
    fn the_sun_can_be_placed_on_the_sky_s_date() {
        let noon = WeatherHour {
            start: Utc.with_ymd_and_hms(2026, 11, 30, 11, 0, 0).unwrap(),
            ghi: 880.0,
            dni: None,
            dhi: None,
            temperature_c: Some(15.0),
            cloud_cover: Some(0.0),
        };
        let november_sun = baseline_kwh(&site(), &noon);
        let june = Site {
            sun_shift_days: -162,
            ..site()
        };
        let june_sun = baseline_kwh(&june, &noon);
        assert!(
            november_sun > 8.0 && june_sun < 7.5,
            "a June sky under a November sun: {november_sun:.1} kWh from 8 kWp; placed in June: {june_sun:.1}"
        );
    }

    #[test]
    fn without_cloud_cover_the_sky_s_brightness_says_how_cloudy_it_is() {
        let hour = |ghi: f64, cloud_cover: Option<f64>| WeatherHour {
            start: Utc.with_ymd_and_hms(2026, 6, 21, 11, 0, 0).unwrap(),
            ghi,
            dni: None,
            dhi: None,
            temperature_c: None,
            cloud_cover,
        };
        assert_eq!(cloudiness(&site(), &hour(900.0, Some(70.0))), 0.7);
        let clear = cloudiness(&site(), &hour(950.0, None));
        let dull = cloudiness(&site(), &hour(250.0, None));
        assert!(clear < 0.1 && dull > 0.6, "{clear} {dull}");
        let night = WeatherHour {
            start: Utc.with_ymd_and_hms(2026, 6, 21, 23, 0, 0).unwrap(),
            ..hour(0.0, None)
        };
        assert_eq!(cloudiness(&site(), &night), 0.5);
    }

    #[test]
    fn the_physics_never_makes_more_than_the_inverter_passes() {
        let noon = WeatherHour {
            start: Utc.with_ymd_and_hms(2026, 6, 21, 11, 0, 0).unwrap(),
            ghi: 880.0,
            dni: Some(800.0),
            dhi: Some(120.0),
            temperature_c: Some(15.0),
            cloud_cover: Some(0.0),
        };
        let free = baseline_kwh(&site(), &noon);
        assert!(free > 5.5, "8 kWp at a clear June noon: {free}");
        let mut limited = site();
        limited.arrays[0].ac_kw = Some(5.0);
        assert_eq!(baseline_kwh(&limited, &noon), 5.0);
    }

    /// A clear-sky day with clouds varying by day; the "real" roof yields `factor` of
    /// what the physics says, less on cloudy hours (what a correction should learn).
    fn history(days: i64, factor: f64) -> Vec<Sample> {
        let site = site();
        let mut samples = Vec::new();
        for day in 0..days {
            for hour in 0..24 {
                let start =
                    Utc.with_ymd_and_hms(2026, 5, 1, hour, 0, 0).unwrap() + Duration::days(day);
                let sun = solar::sun_position(start + Duration::minutes(30), 52.0, 7.6);
                let cloud = ((day * 37 + i64::from(hour) * 11) % 100) as f64;
                let clear = if sun.is_up() {
                    1000.0 * sun.cos_zenith()
                } else {
                    0.0
                };
                let weather = WeatherHour {
                    start,
                    ghi: clear * (1.0 - 0.7 * cloud / 100.0),
                    dni: None,
                    dhi: None,
                    temperature_c: Some(18.0),
                    cloud_cover: Some(cloud),
                };
                let physics = baseline_kwh(&site, &weather);
                let actual = physics * factor * (1.0 - 0.2 * cloud / 100.0);
                samples.push(Sample {
                    weather,
                    actual_kwh: actual,
                });
            }
        }
        samples
    }

    #[test]
    fn the_baseline_yields_nothing_at_night_and_about_kwp_at_a_clear_noon() {
        let noon = WeatherHour {
            start: Utc.with_ymd_and_hms(2026, 6, 21, 11, 0, 0).unwrap(),
            ghi: 850.0,
            dni: None,
            dhi: None,
            temperature_c: Some(20.0),
            cloud_cover: Some(0.0),
        };
        let night = WeatherHour {
            start: Utc.with_ymd_and_hms(2026, 6, 21, 22, 0, 0).unwrap(),
            ghi: 0.0,
            ..noon.clone()
        };
        let kwh = baseline_kwh(&site(), &noon);
        assert!(
            (5.5..8.0).contains(&kwh),
            "8 kWp at a clear June noon: {kwh}"
        );
        assert_eq!(baseline_kwh(&site(), &night), 0.0);
        let two = Site {
            arrays: vec![site().arrays[0].clone(), site().arrays[0].clone()],
            ..site()
        };
        assert!(
            (baseline_kwh(&two, &noon) - 2.0 * kwh).abs() < 1e-9,
            "arrays add up"
        );
    }

    #[test]
    fn a_correction_is_learned_when_the_roof_yields_less_than_the_physics() {
        let samples = history(20, 0.8);
        let model = Model::train(&site(), &samples, 7, 14, Utc::now());
        let report = model.report.clone().unwrap();
        assert!(report.adopted, "{report:?}");
        assert_eq!(model.kind(), "learned");
        assert_eq!(
            (report.training_days, report.hold_out_days),
            (20, 20),
            "every day is held out once, in one of 5 folds"
        );
        let note = report.note.clone().unwrap();
        assert!(
            note.starts_with("correction kept: -")
                && note.contains("over 5 day-folds (won 5 of 5;"),
            "{note}"
        );
        let learned = report.hold_out_error.unwrap();
        let baseline = report.baseline_hold_out_error.unwrap();
        assert!(
            learned.nmae < 0.5 * baseline.nmae,
            "{learned:?} vs {baseline:?}"
        );
        assert!(learned.nmae < 0.05, "{learned:?}");
        // The held-out hours also give the range of an hour's forecast.
        let noon = samples
            .iter()
            .find(|s| s.weather.start.hour() == 11 && s.weather.cloud_cover.unwrap_or(0.0) > 40.0)
            .unwrap();
        let kwh = model.predict_kwh(&site(), &noon.weather);
        let (p10, p90) = model.range(&site(), &noon.weather, kwh).unwrap();
        assert!(
            p10 <= kwh && kwh <= p90 && p10 < p90,
            "{p10} ≤ {kwh} ≤ {p90}"
        );
    }

    #[test]
    fn a_roof_that_matches_the_physics_keeps_the_baseline_or_stays_as_good() {
        let samples = history(20, 1.0 / (1.0 - 0.1));
        let model = Model::train(&site(), &samples, 7, 14, Utc::now());
        let report = model.report.unwrap();
        let gain = 1.0
            - report.hold_out_error.unwrap().mae_kwh
                / report.baseline_hold_out_error.unwrap().mae_kwh;
        // Kept only with the margin; and the report says which way and by how much.
        assert_eq!(report.adopted, gain >= ADOPTION_MARGIN, "{report:?}");
        let note = report.note.unwrap();
        let verdict = if report.adopted { "kept" } else { "dropped" };
        assert!(
            note.starts_with(&format!("correction {verdict}: {:+.1} %", -gain * 100.0)),
            "{note}"
        );
    }

    #[test]
    fn too_little_history_keeps_the_physical_model_and_says_why() {
        let model = Model::train(&site(), &history(3, 0.8), 7, 14, Utc::now());
        assert_eq!(model.kind(), "physical");
        assert!(model
            .report
            .unwrap()
            .note
            .unwrap()
            .contains("3 day(s) of history, 7 needed"));
    }

    #[test]
    fn nmae_is_the_error_per_kwh_produced_over_exactly_the_hours_given() {
        // The caller chooses the hours (the same for every predictor): a dark hour
        // given counts, it is not dropped per predictor.
        let error = Error::over(&[(1.0, 2.0), (3.0, 2.0), (0.0, 0.0)]).unwrap();
        assert_eq!(error.hours, 3);
        assert!((error.mae_kwh - 2.0 / 3.0).abs() < 1e-12);
        assert!((error.nmae - 0.5).abs() < 1e-12);
        assert_eq!(Error::over(&[(0.0, 0.0)]), None);
        assert_eq!(Error::over(&[]), None);
    }

    #[test]
    fn the_prediction_never_exceeds_the_rated_power_or_goes_negative() {
        let model = Model {
            correction: Some(Correction {
                coefficients: vec![5.0, 0.0, 0.0, 0.0],
            }),
            report: None,
            calibration: None,
            quantiles: None,
        };
        let noon = &history(1, 1.0)[11].weather;
        assert!(model.predict_kwh(&site(), noon) <= site().kwp());
        let negative = Model {
            correction: Some(Correction {
                coefficients: vec![-5.0, 0.0, 0.0, 0.0],
            }),
            report: None,
            calibration: None,
            quantiles: None,
        };
        assert_eq!(negative.predict_kwh(&site(), noon), 0.0);
    }
}
