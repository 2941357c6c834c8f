//! How sure the forecast is: P10/P50/P90 per hour from what the model got wrong on
//! days it had not seen (the cross-validation's held-out hours), by how clear the
//! sky was. A forecast of a bright hour is surer than one of a broken sky.

use crate::calibrate::clear_sky_index;
use crate::model::Site;
use crate::weather::WeatherHour;
use serde::{Deserialize, Serialize};

/// Upper clear-sky index of each bin: overcast, broken, clear.
const BINS: [f64; 3] = [0.35, 0.75, f64::INFINITY];
/// Held-out hours a bin needs before its own quantiles are used.
const MIN_HOURS_PER_BIN: usize = 20;
/// Hours predicted below this say nothing about a ratio.
const MIN_PREDICTED_KWH: f64 = 0.05;

/// Measured over forecast, at the 10th, 50th and 90th percentile.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Ratios {
    pub p10: f64,
    pub p50: f64,
    pub p90: f64,
}

/// Ratios per clear-sky bin (`None` where the bin had too few hours: the pooled ones).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Quantiles {
    pub bins: Vec<Ratios>,
    pub hours: usize,
}

fn bin_of(index: f64) -> usize {
    BINS.iter()
        .position(|upper| index < *upper)
        .unwrap_or(BINS.len() - 1)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = p * (sorted.len() - 1) as f64;
    let (low, high) = (rank.floor() as usize, rank.ceil() as usize);
    sorted[low] + (sorted[high] - sorted[low]) * (rank - rank.floor())
}

fn ratios(mut values: Vec<f64>) -> Ratios {
    values.sort_by(f64::total_cmp);
    Ratios {
        p10: percentile(&values, 0.1),
        p50: percentile(&values, 0.5),
        p90: percentile(&values, 0.9),
    }
}

impl Quantiles {
    /// From held-out `(weather, predicted, actual)`; `None` with too few daylight hours.
    pub fn learn<'a>(
        site: &Site,
        held_out: impl IntoIterator<Item = (&'a WeatherHour, f64, f64)>,
    ) -> Option<Self> {
        let mut per_bin: Vec<Vec<f64>> = vec![Vec::new(); BINS.len()];
        for (weather, predicted, actual) in held_out {
            let Some(index) = clear_sky_index(site, weather) else {
                continue;
            };
            if predicted >= MIN_PREDICTED_KWH {
                per_bin[bin_of(index)].push(actual / predicted);
            }
        }
        let all: Vec<f64> = per_bin.iter().flatten().copied().collect();
        if all.len() < MIN_HOURS_PER_BIN {
            return None;
        }
        let pooled = ratios(all.clone());
        Some(Self {
            bins: per_bin
                .into_iter()
                .map(|values| {
                    if values.len() >= MIN_HOURS_PER_BIN {
                        ratios(values)
                    } else {
                        pooled
                    }
                })
                .collect(),
            hours: all.len(),
        })
    }

    /// (P10, P50, P90) kWh for an hour forecast at `kwh`; the sun low or down: all `kwh`.
    pub fn range(&self, site: &Site, weather: &WeatherHour, kwh: f64) -> (f64, f64, f64) {
        let Some(index) = clear_sky_index(site, weather) else {
            return (kwh, kwh, kwh);
        };
        let r = self.bins[bin_of(index).min(self.bins.len() - 1)];
        (kwh * r.p10, kwh * r.p50, kwh * r.p90)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone, Utc};

    fn site() -> Site {
        Site {
            latitude: 52.0,
            longitude: 7.6,
            sun_shift_days: 0,
            arrays: vec![crate::solar::Array {
                kwp: 6.0,
                tilt_deg: 30.0,
                azimuth_deg: 180.0,
                ac_kw: None,
            }],
        }
    }

    /// Noon hours over many days; `spread(ghi)` how wrong the forecast is at that sky.
    fn held_out(spread: impl Fn(f64, usize) -> f64) -> Vec<(WeatherHour, f64, f64)> {
        (0..120)
            .map(|day| {
                let start =
                    Utc.with_ymd_and_hms(2026, 5, 1, 11, 0, 0).unwrap() + Duration::days(day);
                let ghi = if day % 2 == 0 { 850.0 } else { 250.0 };
                let weather = WeatherHour {
                    start,
                    ghi,
                    dni: None,
                    dhi: None,
                    temperature_c: None,
                    cloud_cover: None,
                };
                (weather, 4.0, 4.0 * spread(ghi, day as usize))
            })
            .collect()
    }

    #[test]
    fn a_broken_sky_gets_a_wider_range_than_a_clear_one() {
        // Clear noons are off by ±5 %, cloudy ones by ±50 %.
        let pairs = held_out(|ghi, day| {
            let wobble = ((day * 37) % 11) as f64 / 10.0 - 0.5; // −0.5..0.5
            if ghi > 500.0 {
                1.0 + 0.1 * wobble
            } else {
                1.0 + wobble
            }
        });
        let quantiles =
            Quantiles::learn(&site(), pairs.iter().map(|(w, p, a)| (w, *p, *a))).unwrap();
        let (clear, cloudy) = (&pairs[0].0, &pairs[1].0);
        let (c10, c50, c90) = quantiles.range(&site(), clear, 4.0);
        let (o10, _, o90) = quantiles.range(&site(), cloudy, 4.0);
        assert!(c10 < c50 && c50 < c90, "{c10} {c50} {c90}");
        assert!(c90 - c10 < 0.5, "clear: {c10}..{c90}");
        assert!(o90 - o10 > 2.0, "cloudy: {o10}..{o90}");
        let night = WeatherHour {
            start: Utc.with_ymd_and_hms(2026, 5, 1, 23, 0, 0).unwrap(),
            ..clear.clone()
        };
        assert_eq!(quantiles.range(&site(), &night, 0.0), (0.0, 0.0, 0.0));
    }

    #[test]
    fn too_few_hours_say_nothing() {
        let pairs = held_out(|_, _| 1.0);
        assert!(
            Quantiles::learn(&site(), pairs.iter().take(10).map(|(w, p, a)| (w, *p, *a))).is_none()
        );
    }
}
