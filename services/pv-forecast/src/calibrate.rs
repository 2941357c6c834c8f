//! Self-calibration: the roof as the meter sees it. People rarely know their azimuth
//! to 20°; on clear hours the shape of the day tells it. Each candidate orientation
//! (bounded around what the user entered) is scored by how well the physics, scaled
//! by one least-squares factor (the effective kWp and losses), follows the meter on
//! clear hours; the best one is used.

use crate::model::{baseline_kwh, Sample, Site};
use crate::solar;
use crate::weather::WeatherHour;
use serde::{Deserialize, Serialize};

/// How far from the entered orientation the fit may go.
pub const TILT_BOUND_DEG: f64 = 15.0;
pub const AZIMUTH_BOUND_DEG: f64 = 25.0;
/// The effective size may be this share of the entered kWp (losses, soiling, a wrong
/// figure), no more, no less.
pub const SCALE_BOUNDS: (f64, f64) = (0.5, 1.3);
/// Clear hours needed before the roof is fitted.
pub const MIN_CLEAR_HOURS: usize = 30;

/// GHI under a cloudless sky (Haurwitz), W/m², from the cosine of the solar zenith.
pub fn clear_sky_ghi(cos_zenith: f64) -> f64 {
    if cos_zenith <= 0.0 {
        return 0.0;
    }
    1098.0 * cos_zenith * (-0.057 / cos_zenith).exp()
}

/// Measured GHI over the clear-sky GHI at the hour's middle; `None` with the sun low.
pub fn clear_sky_index(site: &Site, hour: &WeatherHour) -> Option<f64> {
    let sun = site.sun_in_hour(hour.start);
    // Below 15° elevation the clear-sky model and the meter both say little.
    (sun.cos_zenith() > 0.26).then(|| hour.ghi / clear_sky_ghi(sun.cos_zenith()))
}

/// The fitted roof: offsets to every array's orientation and one scale of its kWp.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    pub tilt_offset_deg: f64,
    pub azimuth_offset_deg: f64,
    pub scale: f64,
    pub clear_hours: usize,
    /// Root-mean-square error on the clear hours, as entered (scaled) and as fitted.
    pub rmse_entered_kwh: f64,
    pub rmse_fitted_kwh: f64,
}

impl Calibration {
    pub fn apply(&self, site: &Site) -> Site {
        Site {
            arrays: site
                .arrays
                .iter()
                .map(|array| solar::Array {
                    kwp: array.kwp * self.scale,
                    tilt_deg: (array.tilt_deg + self.tilt_offset_deg).clamp(0.0, 90.0),
                    azimuth_deg: (array.azimuth_deg + self.azimuth_offset_deg).rem_euclid(360.0),
                    ac_kw: array.ac_kw,
                })
                .collect(),
            ..site.clone()
        }
    }

    /// For a person: what the roof looks like after the fit.
    pub fn describe(&self, site: &Site) -> String {
        let fitted = self.apply(site);
        let arrays: Vec<String> = fitted
            .arrays
            .iter()
            .map(|a| {
                format!(
                    "{:.2} kWp effective, tilt {:.0}°, azimuth {:.0}°",
                    a.kwp, a.tilt_deg, a.azimuth_deg
                )
            })
            .collect();
        format!(
            "{} (fitted on {} clear hours; error {:.3} → {:.3} kWh)",
            arrays.join("; "),
            self.clear_hours,
            self.rmse_entered_kwh,
            self.rmse_fitted_kwh
        )
    }
}

struct Candidate {
    tilt: f64,
    azimuth: f64,
    scale: f64,
    sse: f64,
}

/// The best orientation and scale for `samples`' clear hours, or why there is none.
pub fn calibrate(site: &Site, samples: &[Sample]) -> Result<Calibration, String> {
    let clear: Vec<&Sample> = samples
        .iter()
        .filter(|s| clear_sky_index(site, &s.weather).is_some_and(|k| (0.85..=1.15).contains(&k)))
        .collect();
    // Hours at the inverter's limit say nothing about the orientation.
    let highest = clear.iter().map(|s| s.actual_kwh).fold(0.0, f64::max);
    let clear: Vec<&Sample> = clear
        .into_iter()
        .filter(|s| s.actual_kwh < 0.97 * highest && s.actual_kwh > 0.0)
        .collect();
    if clear.len() < MIN_CLEAR_HOURS {
        return Err(format!(
            "{} clear hours, {MIN_CLEAR_HOURS} needed to fit the roof",
            clear.len()
        ));
    }
    let score = |tilt: f64, azimuth: f64| -> Candidate {
        let unit = Calibration {
            tilt_offset_deg: tilt,
            azimuth_offset_deg: azimuth,
            scale: 1.0,
            clear_hours: 0,
            rmse_entered_kwh: 0.0,
            rmse_fitted_kwh: 0.0,
        }
        .apply(site);
        let pairs: Vec<(f64, f64)> = clear
            .iter()
            .map(|s| (baseline_kwh(&unit, &s.weather), s.actual_kwh))
            .collect();
        let xx: f64 = pairs.iter().map(|(x, _)| x * x).sum();
        let xy: f64 = pairs.iter().map(|(x, y)| x * y).sum();
        let scale = if xx > 0.0 { xy / xx } else { 1.0 };
        let sse = pairs.iter().map(|(x, y)| (y - scale * x).powi(2)).sum();
        Candidate {
            tilt,
            azimuth,
            scale,
            sse,
        }
    };
    let in_bounds = |c: &Candidate| (SCALE_BOUNDS.0..=SCALE_BOUNDS.1).contains(&c.scale);
    let best_of = |candidates: Vec<Candidate>| {
        candidates
            .into_iter()
            .filter(in_bounds)
            .min_by(|a, b| a.sse.total_cmp(&b.sse))
    };
    // A coarse grid over the bounds, then 1° steps around its best.
    let steps = |bound: f64, step: f64| {
        let n = (bound / step).round() as i32;
        (-n..=n).map(move |i| f64::from(i) * step)
    };
    let coarse: Vec<Candidate> = steps(TILT_BOUND_DEG, 5.0)
        .flat_map(|t| steps(AZIMUTH_BOUND_DEG, 5.0).map(move |a| (t, a)))
        .map(|(t, a)| score(t, a))
        .collect();
    let Some(rough) = best_of(coarse) else {
        return Err(format!(
            "no orientation near the entered one fits with a size between {:.0} % and {:.0} % of the entered kWp",
            SCALE_BOUNDS.0 * 100.0,
            SCALE_BOUNDS.1 * 100.0
        ));
    };
    let fine: Vec<Candidate> = steps(4.0, 1.0)
        .flat_map(|t| steps(4.0, 1.0).map(move |a| (t, a)))
        .map(|(t, a)| (rough.tilt + t, rough.azimuth + a))
        .filter(|(t, a)| t.abs() <= TILT_BOUND_DEG && a.abs() <= AZIMUTH_BOUND_DEG)
        .map(|(t, a)| score(t, a))
        .collect();
    let best = best_of(fine).unwrap_or(rough);
    let entered = score(0.0, 0.0);
    let hours = clear.len() as f64;
    Ok(Calibration {
        tilt_offset_deg: best.tilt,
        azimuth_offset_deg: best.azimuth,
        scale: best.scale,
        clear_hours: clear.len(),
        rmse_entered_kwh: (entered.sse / hours).sqrt(),
        rmse_fitted_kwh: (best.sse / hours).sqrt(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone, Utc};

    fn site(tilt: f64, azimuth: f64) -> Site {
        Site {
            latitude: 52.0,
            longitude: 7.6,
            sun_shift_days: 0,
            arrays: vec![solar::Array {
                kwp: 6.0,
                tilt_deg: tilt,
                azimuth_deg: azimuth,
                ac_kw: None,
            }],
        }
    }

    /// Clear days for a roof at `real`, metered at 90 % of the physics.
    fn clear_days(real: &Site, days: i64) -> Vec<Sample> {
        let mut samples = Vec::new();
        for day in 0..days {
            for hour in 0..24 {
                let start = Utc.with_ymd_and_hms(2026, 5, 1, hour, 0, 0).unwrap()
                    + chrono::Duration::days(day);
                let sun = solar::sun_position(start + Duration::minutes(30), 52.0, 7.6);
                let weather = WeatherHour {
                    start,
                    ghi: clear_sky_ghi(sun.cos_zenith()),
                    dni: None,
                    dhi: None,
                    temperature_c: Some(15.0),
                    cloud_cover: Some(0.0),
                };
                let actual_kwh = 0.9 * baseline_kwh(real, &weather);
                samples.push(Sample {
                    weather,
                    actual_kwh,
                });
            }
        }
        samples
    }

    #[test]
    fn the_clear_sky_is_brightest_at_a_high_sun_and_dark_at_night() {
        assert!((clear_sky_ghi(1.0) - 1037.0).abs() < 5.0);
        assert!(clear_sky_ghi(0.5) < 0.5 * clear_sky_ghi(1.0));
        assert_eq!(clear_sky_ghi(-0.2), 0.0);
    }

    #[test]
    fn a_guessed_orientation_is_fitted_back_to_the_real_roof() {
        let real = site(25.0, 205.0);
        let entered = site(40.0, 180.0);
        let fitted = calibrate(&entered, &clear_days(&real, 10)).unwrap();
        let roof = fitted.apply(&entered);
        assert!(
            (roof.arrays[0].azimuth_deg - 205.0).abs() <= 3.0
                && (roof.arrays[0].tilt_deg - 25.0).abs() <= 4.0,
            "{}",
            fitted.describe(&entered)
        );
        assert!((fitted.scale - 0.9).abs() < 0.05, "{fitted:?}");
        assert!(
            fitted.rmse_fitted_kwh < 0.2 * fitted.rmse_entered_kwh,
            "{fitted:?}"
        );
    }

    #[test]
    fn without_enough_clear_hours_nothing_is_fitted_and_the_reason_is_given() {
        let mut cloudy = clear_days(&site(30.0, 180.0), 10);
        for sample in &mut cloudy {
            sample.weather.ghi *= 0.4;
        }
        let error = calibrate(&site(30.0, 180.0), &cloudy).unwrap_err();
        assert!(error.starts_with("0 clear hours, 30 needed"), "{error}");
    }
}
