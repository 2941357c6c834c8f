//! Hourly weather: what Open-Meteo answers, and the shape the model reads.

use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use serde::Deserialize;

/// One hour of weather, labelled by the hour's start (UTC).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct WeatherHour {
    pub start: DateTime<Utc>,
    /// Global horizontal irradiance, mean over the hour (W/m²).
    pub ghi: f64,
    /// Direct normal and diffuse horizontal irradiance, when the source gives them.
    pub dni: Option<f64>,
    pub dhi: Option<f64>,
    pub temperature_c: Option<f64>,
    /// 0..100 %.
    pub cloud_cover: Option<f64>,
}

/// The variables asked for; the model uses all of them.
pub const HOURLY_VARIABLES: &str =
    "shortwave_radiation,direct_normal_irradiance,diffuse_radiation,temperature_2m,cloud_cover";

/// The forecast API address for a place: UTC times, `past_days` of history for training.
pub fn forecast_url(base: &str, latitude: f64, longitude: f64, past_days: u32) -> String {
    format!(
        "{}/v1/forecast?latitude={latitude:.4}&longitude={longitude:.4}&hourly={HOURLY_VARIABLES}\
         &timezone=UTC&past_days={past_days}&forecast_days=2",
        base.trim_end_matches('/')
    )
}

#[derive(Debug, Deserialize)]
struct Response {
    #[serde(default)]
    utc_offset_seconds: i64,
    hourly: Hourly,
}

#[derive(Debug, Deserialize)]
struct Hourly {
    time: Vec<String>,
    shortwave_radiation: Vec<Option<f64>>,
    #[serde(default)]
    direct_normal_irradiance: Vec<Option<f64>>,
    #[serde(default)]
    diffuse_radiation: Vec<Option<f64>>,
    #[serde(default)]
    temperature_2m: Vec<Option<f64>>,
    #[serde(default)]
    cloud_cover: Vec<Option<f64>>,
}

/// Parses an Open-Meteo forecast answer. Radiation there is the mean of the hour
/// *before* the time stamp, so an hour labelled 13:00 becomes the hour starting 12:00.
/// Hours whose radiation is null (the far end of a model run) are left out.
pub fn parse_open_meteo(body: &str) -> Result<Vec<WeatherHour>, String> {
    let response: Response =
        serde_json::from_str(body).map_err(|e| format!("not an Open-Meteo forecast: {e}"))?;
    let hourly = response.hourly;
    let count = hourly.time.len();
    for (name, length) in [
        ("shortwave_radiation", hourly.shortwave_radiation.len()),
        (
            "direct_normal_irradiance",
            hourly.direct_normal_irradiance.len(),
        ),
        ("diffuse_radiation", hourly.diffuse_radiation.len()),
        ("temperature_2m", hourly.temperature_2m.len()),
        ("cloud_cover", hourly.cloud_cover.len()),
    ] {
        if length != 0 && length != count {
            return Err(format!(
                "hourly.{name} has {length} values for {count} times"
            ));
        }
    }
    let at = |values: &[Option<f64>], index: usize| values.get(index).copied().flatten();
    let mut hours = Vec::with_capacity(count);
    for (index, time) in hourly.time.iter().enumerate() {
        let local = NaiveDateTime::parse_from_str(time, "%Y-%m-%dT%H:%M")
            .map_err(|e| format!("hourly.time[{index}] = {time:?}: {e}"))?;
        let end = local.and_utc() - Duration::seconds(response.utc_offset_seconds);
        let Some(ghi) = at(&hourly.shortwave_radiation, index) else {
            continue;
        };
        hours.push(WeatherHour {
            start: end - Duration::hours(1),
            ghi,
            dni: at(&hourly.direct_normal_irradiance, index),
            dhi: at(&hourly.diffuse_radiation, index),
            temperature_c: at(&hourly.temperature_2m, index),
            cloud_cover: at(&hourly.cloud_cover, index),
        });
    }
    Ok(hours)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURE: &str = include_str!("../tests/fixtures/open-meteo-forecast.json");

    #[test]
    fn the_fixture_parses_into_hour_starts_with_all_variables() {
        let hours = parse_open_meteo(FIXTURE).unwrap();
        assert!(hours.len() >= 48, "{}", hours.len());
        let first = &hours[0];
        // Labelled 00:00 = the hour 23:00..00:00 of the day before.
        assert_eq!(first.start.to_rfc3339(), "2026-06-19T23:00:00+00:00");
        assert!(hours
            .iter()
            .all(|h| h.dni.is_some() && h.temperature_c.is_some()));
        assert!(hours.iter().any(|h| h.ghi > 600.0), "a June noon is bright");
    }

    #[test]
    fn a_local_time_zone_answer_is_turned_into_utc() {
        let body = r#"{"utc_offset_seconds":7200,"hourly":{"time":["2026-06-20T14:00"],
            "shortwave_radiation":[700.0]}}"#;
        let hours = parse_open_meteo(body).unwrap();
        assert_eq!(hours[0].start.to_rfc3339(), "2026-06-20T11:00:00+00:00");
        assert_eq!(hours[0].dni, None);
    }

    #[test]
    fn broken_answers_name_what_is_wrong() {
        let short = r#"{"hourly":{"time":["2026-06-20T14:00","2026-06-20T15:00"],
            "shortwave_radiation":[700.0]}}"#;
        assert!(parse_open_meteo(short)
            .unwrap_err()
            .contains("shortwave_radiation has 1"));
        let bad_time = r#"{"hourly":{"time":["yesterday"],"shortwave_radiation":[1.0]}}"#;
        assert!(parse_open_meteo(bad_time)
            .unwrap_err()
            .contains("hourly.time[0]"));
        assert!(
            parse_open_meteo(r#"{"error":true,"reason":"Latitude must be in range"}"#)
                .unwrap_err()
                .contains("not an Open-Meteo forecast")
        );
    }

    #[test]
    fn null_radiation_at_the_end_of_a_run_is_left_out() {
        let body = r#"{"hourly":{"time":["2026-06-20T14:00","2026-06-20T15:00"],
            "shortwave_radiation":[700.0,null]}}"#;
        assert_eq!(parse_open_meteo(body).unwrap().len(), 1);
    }

    #[test]
    fn the_url_asks_for_utc_and_the_training_days() {
        let url = forecast_url("http://127.0.0.1:9/", 52.0, 7.6, 30);
        assert!(url.starts_with("http://127.0.0.1:9/v1/forecast?latitude=52.0000&longitude=7.6000"));
        assert!(url.contains("timezone=UTC") && url.contains("past_days=30"));
        assert!(url.contains("direct_normal_irradiance"));
    }
}
