//! From hourly weather and a model to what a person wants to know: today's and
//! tomorrow's energy, hour by hour, and how much of today is still to come.

use crate::model::{Error, Model, Site};
use crate::weather::WeatherHour;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

pub use homelab::messages::pv_forecast::HourEnergy;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Forecast {
    pub generated_at: DateTime<Utc>,
    /// The local date "today" refers to.
    pub today_date: NaiveDate,
    pub today: Vec<HourEnergy>,
    pub tomorrow: Vec<HourEnergy>,
    pub today_kwh: f64,
    pub tomorrow_kwh: f64,
    pub model: String,
    /// The model's error on held-out days, when it was trained.
    pub hold_out_error: Option<Error>,
}

fn round3(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

impl Forecast {
    pub fn make(
        site: &Site,
        model: &Model,
        weather: &[WeatherHour],
        now: DateTime<Utc>,
        zone: Tz,
    ) -> Self {
        let today_date = now.with_timezone(&zone).date_naive();
        let tomorrow_date = today_date.succ_opt().unwrap_or(today_date);
        let mut today = Vec::new();
        let mut tomorrow = Vec::new();
        for hour in weather {
            let date = hour.start.with_timezone(&zone).date_naive();
            let kwh = model.predict_kwh(site, hour);
            let range = model.range(site, hour, kwh);
            let energy = HourEnergy {
                start: hour.start,
                kwh: round3(kwh),
                p10_kwh: range.map(|(p10, _)| round3(p10)),
                p90_kwh: range.map(|(_, p90)| round3(p90)),
            };
            if date == today_date {
                today.push(energy);
            } else if date == tomorrow_date {
                tomorrow.push(energy);
            }
        }
        let total = |hours: &[HourEnergy]| round3(hours.iter().map(|h| h.kwh).sum());
        Self {
            generated_at: now,
            today_date,
            today_kwh: total(&today),
            tomorrow_kwh: total(&tomorrow),
            today,
            tomorrow,
            model: model.kind().to_string(),
            hold_out_error: model
                .report
                .as_ref()
                .filter(|r| r.adopted)
                .and_then(|r| r.hold_out_error),
        }
    }

    /// Today's energy still to come at `now`: later hours whole, the current hour in part.
    pub fn remaining_today_kwh(&self, now: DateTime<Utc>) -> f64 {
        let hour = Duration::hours(1);
        let remaining: f64 = self
            .today
            .iter()
            .map(|h| {
                if h.start >= now {
                    h.kwh
                } else if h.start + hour > now {
                    let left = (h.start + hour - now).num_seconds() as f64 / 3600.0;
                    h.kwh * left
                } else {
                    0.0
                }
            })
            .sum();
        round3(remaining)
    }

    /// Whether this forecast was made for the local date of `now`.
    pub fn is_for(&self, now: DateTime<Utc>, zone: Tz) -> bool {
        self.today_date == now.with_timezone(&zone).date_naive()
    }
}

/// The start of the hour `time` falls in.
pub fn hour_of(time: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(time.timestamp() - time.timestamp().rem_euclid(3600), 0)
        .unwrap_or(time)
}

/// Energy per hour (kWh, keyed by the hour's start) from a power sensor's history,
/// as Home Assistant records it: each value holds until the next. Hours with a gap
/// (sensor unavailable, or before the first value) are left out rather than guessed.
pub fn hourly_energy(
    samples: &[(DateTime<Utc>, Option<f64>)],
    end: DateTime<Utc>,
) -> Vec<(DateTime<Utc>, f64)> {
    use std::collections::BTreeMap;
    let hour = Duration::hours(1);
    // (energy in Wh, seconds covered) per hour.
    let mut hours: BTreeMap<DateTime<Utc>, (f64, i64)> = BTreeMap::new();
    for (index, (from, watts)) in samples.iter().enumerate() {
        let to = samples.get(index + 1).map_or(end, |next| next.0).min(end);
        let Some(watts) = watts else { continue };
        let mut cursor = *from;
        while cursor < to {
            let hour_start = hour_of(cursor);
            let piece_end = (hour_start + hour).min(to);
            let seconds = (piece_end - cursor).num_seconds();
            let entry = hours.entry(hour_start).or_default();
            entry.0 += watts.max(0.0) * seconds as f64 / 3600.0;
            entry.1 += seconds;
            cursor = piece_end;
        }
    }
    hours
        .into_iter()
        .filter(|(_, (_, covered))| *covered >= 3600)
        .map(|(start, (wh, _))| (start, wh / 1000.0))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::tests::site;
    use chrono::TimeZone;

    #[test]
    fn the_fixture_forecast_splits_into_local_today_and_tomorrow() {
        let weather = crate::weather::parse_open_meteo(include_str!(
            "../tests/fixtures/open-meteo-forecast.json"
        ))
        .unwrap();
        let zone: Tz = "Europe/Berlin".parse().unwrap();
        let now = Utc.with_ymd_and_hms(2026, 6, 20, 10, 0, 0).unwrap(); // 12:00 in Berlin
        let forecast = Forecast::make(&site(), &Model::default(), &weather, now, zone);
        assert_eq!(forecast.today_date.to_string(), "2026-06-20");
        assert_eq!(forecast.model, "physical");
        // Berlin's 20 June starts 22:00 UTC the day before; the fixture begins at 23:00.
        assert_eq!(forecast.today.len(), 23);
        assert!(
            (35.0..70.0).contains(&forecast.today_kwh),
            "a clear June day on 8 kWp: {}",
            forecast.today_kwh
        );
        assert!(
            forecast.tomorrow_kwh < forecast.today_kwh,
            "clouds build on the second day"
        );
        let remaining = forecast.remaining_today_kwh(now);
        assert!(
            remaining > 0.3 * forecast.today_kwh && remaining < 0.7 * forecast.today_kwh,
            "{remaining}"
        );
        let evening = Utc.with_ymd_and_hms(2026, 6, 20, 20, 30, 0).unwrap();
        assert!(forecast.remaining_today_kwh(evening) < 0.1);
        assert!(forecast.is_for(now, zone) && !forecast.is_for(now + Duration::days(1), zone));
    }

    #[test]
    fn the_current_hour_counts_in_part() {
        let start = Utc.with_ymd_and_hms(2026, 6, 20, 10, 0, 0).unwrap();
        let forecast = Forecast {
            generated_at: start,
            today_date: start.date_naive(),
            today: vec![
                HourEnergy {
                    start,
                    kwh: 4.0,
                    p10_kwh: None,
                    p90_kwh: None,
                },
                HourEnergy {
                    start: start + Duration::hours(1),
                    kwh: 2.0,
                    p10_kwh: None,
                    p90_kwh: None,
                },
            ],
            tomorrow: vec![],
            today_kwh: 6.0,
            tomorrow_kwh: 0.0,
            model: "physical".into(),
            hold_out_error: None,
        };
        assert_eq!(
            forecast.remaining_today_kwh(start + Duration::minutes(45)),
            3.0
        );
    }

    #[test]
    fn history_integrates_held_values_and_skips_gaps() {
        let t = |h: u32, m: u32| Utc.with_ymd_and_hms(2026, 6, 20, h, m, 0).unwrap();
        let samples = vec![
            (t(9, 30), Some(1000.0)),
            (t(10, 0), Some(2000.0)),
            (t(10, 30), Some(4000.0)),
            (t(11, 15), None),
            (t(11, 45), Some(500.0)),
        ];
        let energy = hourly_energy(&samples, t(13, 0));
        // 09:00 is half covered, 11:00 has a gap: both left out.
        assert_eq!(energy, vec![(t(10, 0), 3.0), (t(12, 0), 0.5)]);
    }
}
