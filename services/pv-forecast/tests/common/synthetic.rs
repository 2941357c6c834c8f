//! A synthetic roof for the backtest test and bench: 15-minute power and weather
//! exports as a user would have them. The weather file is a noisy view of the weather
//! that made the power (as a forecast is), and the "real" roof differs from its
//! configuration the way real roofs do: soiling, morning shade and inverter clipping.
//! Deterministic (a fixed-seed LCG), so the printed figures are reproducible.

use chrono::{Duration, TimeZone, Utc};
use pv_forecast::model::{baseline_kwh, Site};
use pv_forecast::solar::{sun_position, Array};
use pv_forecast::weather::WeatherHour;

pub struct Lcg(u64);

impl Lcg {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// Uniform in 0..1.
    pub fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The configuration a user would give (what the model believes).
pub fn site() -> Site {
    Site {
        latitude: 52.0,
        longitude: 7.6,
        sun_shift_days: 0,
        arrays: vec![Array {
            kwp: 6.0,
            tilt_deg: 35.0,
            azimuth_deg: 170.0,
            ac_kw: None,
        }],
    }
}

/// `(power_csv, weather_csv)` for `days` days from 1 April 2026.
#[allow(dead_code)] // the bench uses only history_of
pub fn history(days: i64, seed: u64) -> (String, String) {
    history_of(&site(), days, seed)
}

/// The same for a real roof `site` (which a test may configure wrongly).
pub fn history_of(site: &Site, days: i64, seed: u64) -> (String, String) {
    let site = site.clone();
    let mut random = Lcg::new(seed);
    let mut power = String::from("time,power (W)\n");
    let mut weather = String::from("time,ghi,temperature,cloud_cover\n");
    let start = Utc.with_ymd_and_hms(2026, 4, 1, 0, 0, 0).unwrap();
    let mut cloud: f64 = 0.4;
    let mut day_mean = 0.4;
    for quarter in 0..days * 96 {
        let time = start + Duration::minutes(15 * quarter);
        if quarter % 96 == 0 {
            day_mean = random.next();
        }
        // Clouds wander around the day's mean.
        cloud = (0.8 * cloud + 0.2 * day_mean + 0.25 * (random.next() - 0.5)).clamp(0.0, 1.0);
        let sun = sun_position(time + Duration::minutes(7), site.latitude, site.longitude);
        let clear = if sun.cos_zenith() > 0.01 {
            1098.0 * sun.cos_zenith() * (-0.057 / sun.cos_zenith()).exp()
        } else {
            0.0
        };
        let ghi = |cloud: f64| clear * (1.0 - 0.75 * cloud.powf(3.4));
        let temperature = 8.0 + 10.0 * sun.cos_zenith().max(0.0) + 4.0 * random.next();
        let true_hour = WeatherHour {
            start: time - Duration::minutes(30) + Duration::minutes(7),
            ghi: ghi(cloud),
            dni: None,
            dhi: None,
            temperature_c: Some(temperature),
            cloud_cover: Some(cloud * 100.0),
        };
        // What the configuration says, then what the real roof loses.
        let mut kw = baseline_kwh(&site, &true_hour) * 0.93;
        let local_hour = (time + Duration::hours(2)).format("%H").to_string();
        if local_hour.as_str() < "09" {
            kw *= 0.6; // the neighbour's tree
        }
        kw = kw.min(0.8 * site.kwp()); // a small inverter
        kw *= 1.0 + 0.03 * (random.next() - 0.5);
        power.push_str(&format!("{},{:.0}\n", time.to_rfc3339(), kw * 1000.0));
        // The forecast saw the clouds only roughly.
        let seen_cloud = (cloud + 0.2 * (random.next() - 0.5)).clamp(0.0, 1.0);
        weather.push_str(&format!(
            "{},{:.1},{:.1},{:.0}\n",
            time.to_rfc3339(),
            ghi(seen_cloud),
            temperature + 2.0 * (random.next() - 0.5),
            seen_cloud * 100.0
        ));
    }
    (power, weather)
}
