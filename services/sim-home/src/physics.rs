//! The simulated house, free of I/O: PV from a clear-sky curve with passing clouds,
//! a daily load profile, a home battery, a wallbox with a car, and a grid meter that
//! balances them. `step` advances simulated time; every figure is in W, Wh and %.

use chrono::{DateTime, Datelike, Timelike, Utc};
use std::f64::consts::PI;

#[derive(Clone, Debug)]
pub struct HouseConfig {
    pub latitude: f64,
    pub longitude: f64,
    pub pv_kwp: f64,
    /// 0 (clear) .. 1 (overcast on average).
    pub cloudiness: f64,
    pub battery_wh: f64,
    pub battery_max_w: f64,
    pub ev_battery_wh: f64,
    pub voltage_v: f64,
    /// The sun of another date (e.g. midsummer for a demo in November): days added
    /// to the clock for sun and clouds only.
    pub season_shift_days: i64,
}

impl Default for HouseConfig {
    fn default() -> Self {
        Self {
            latitude: 52.0,
            longitude: 7.6,
            pv_kwp: 8.0,
            cloudiness: 0.3,
            battery_wh: 10_000.0,
            battery_max_w: 5_000.0,
            ev_battery_wh: 60_000.0,
            voltage_v: 230.0,
            season_shift_days: 0,
        }
    }
}

/// What the meters read after a step. Grid: export positive; battery: charging positive.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Readings {
    pub pv_w: f64,
    pub load_w: f64,
    pub battery_w: f64,
    pub battery_soc: f64,
    pub ev_w: f64,
    pub ev_soc: f64,
    pub grid_w: f64,
}

#[derive(Clone, Debug)]
pub struct House {
    pub config: HouseConfig,
    battery_wh: f64,
    ev_wh: f64,
    /// What the wallbox was told (A; below 6 A the car does not charge).
    pub wallbox_current_a: f64,
    pub wallbox_phases: f64,
    /// The battery's discharge lock: it still charges, but gives nothing.
    pub battery_hold: bool,
    pub last: Option<Readings>,
}

/// Sine of the sun's elevation (a simple declination/hour-angle model; enough for a demo).
pub fn sun_height(time: DateTime<Utc>, latitude: f64, longitude: f64) -> f64 {
    let day = f64::from(time.ordinal());
    let declination = (-23.44f64).to_radians() * (2.0 * PI * (day + 10.0) / 365.0).cos();
    let solar_hours = f64::from(time.hour()) + f64::from(time.minute()) / 60.0 + longitude / 15.0;
    let hour_angle = ((solar_hours - 12.0) * 15.0).to_radians();
    let phi = latitude.to_radians();
    phi.sin() * declination.sin() + phi.cos() * declination.cos() * hour_angle.cos()
}

/// Cloud cover 0..1 at `time`: two slow waves make clouds come and go.
pub fn cloud_cover(time: DateTime<Utc>, cloudiness: f64) -> f64 {
    let minutes = time.timestamp() as f64 / 60.0;
    let wave = 0.5 + 0.5 * (minutes / 17.0).sin() * (minutes / 43.0).cos();
    (cloudiness * 2.0 * wave).clamp(0.0, 1.0)
}

/// Global horizontal irradiance (W/m²) the simulated sky gives.
pub fn irradiance(time: DateTime<Utc>, config: &HouseConfig) -> f64 {
    let time = time + chrono::Duration::days(config.season_shift_days);
    let height = sun_height(time, config.latitude, config.longitude);
    if height <= 0.0 {
        return 0.0;
    }
    1000.0 * height.powf(1.15) * (1.0 - 0.75 * cloud_cover(time, config.cloudiness).powf(2.0))
}

/// The house's own consumption: a base, a morning and an evening peak, some wobble.
pub fn house_load_w(local_hours: f64, seconds: f64) -> f64 {
    let peak = |centre: f64, width: f64, height: f64| {
        height * (-((local_hours - centre) / width).powi(2)).exp()
    };
    300.0
        + peak(7.5, 1.0, 600.0)
        + peak(12.5, 1.0, 400.0)
        + peak(19.0, 1.5, 1200.0)
        + 80.0 * (seconds / 97.0).sin()
}

impl House {
    pub fn new(config: HouseConfig) -> Self {
        Self {
            battery_wh: config.battery_wh * 0.5,
            ev_wh: config.ev_battery_wh * 0.4,
            config,
            wallbox_current_a: 0.0,
            wallbox_phases: 3.0,
            battery_hold: false,
            last: None,
        }
    }

    /// The car's draw for the commanded current (IEC 61851: nothing below 6 A; a full car takes nothing).
    pub fn ev_power_w(&self) -> f64 {
        if self.wallbox_current_a < 6.0 || self.ev_wh >= self.config.ev_battery_wh {
            return 0.0;
        }
        self.wallbox_current_a.min(32.0) * self.wallbox_phases * self.config.voltage_v
    }

    /// Advances `seconds` of simulated time ending at `time` (UTC) with `utc_offset_h` for the load's clock.
    pub fn step(&mut self, time: DateTime<Utc>, seconds: f64, utc_offset_h: f64) -> Readings {
        let hours = seconds / 3600.0;
        let pv_w = self.config.pv_kwp * irradiance(time, &self.config) * 0.85;
        let local_hours = (f64::from(time.hour()) + f64::from(time.minute()) / 60.0 + utc_offset_h)
            .rem_euclid(24.0);
        let load_w = house_load_w(local_hours, time.timestamp() as f64);
        let ev_w = self
            .ev_power_w()
            .min((self.config.ev_battery_wh - self.ev_wh) / hours.max(1e-9));
        let surplus = pv_w - load_w - ev_w;
        // The battery takes what is left over and covers what is missing, within its limits.
        let room_w = (self.config.battery_wh - self.battery_wh) / hours.max(1e-9);
        let stock_w = if self.battery_hold {
            0.0
        } else {
            (self.battery_wh - 0.1 * self.config.battery_wh).max(0.0) / hours.max(1e-9)
        };
        let battery_w = surplus.clamp(
            -self.config.battery_max_w.min(stock_w),
            self.config.battery_max_w.min(room_w),
        );
        let grid_w = surplus - battery_w;
        self.battery_wh += battery_w * hours;
        self.ev_wh += ev_w * hours;
        let readings = Readings {
            pv_w,
            load_w,
            battery_w,
            battery_soc: 100.0 * self.battery_wh / self.config.battery_wh,
            ev_w,
            ev_soc: 100.0 * self.ev_wh / self.config.ev_battery_wh,
            grid_w,
        };
        self.last = Some(readings);
        readings
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};

    fn day(house: &mut House, step_s: i64) -> Vec<Readings> {
        let start = Utc.with_ymd_and_hms(2026, 6, 21, 0, 0, 0).unwrap();
        (0..86_400 / step_s)
            .map(|i| {
                let time = start + Duration::seconds(i * step_s);
                // The wallbox follows a controller that asks for 16 A at midday.
                house.wallbox_current_a = if (10..15).contains(&time.hour()) {
                    16.0
                } else {
                    0.0
                };
                house.step(time, step_s as f64, 2.0)
            })
            .collect()
    }

    #[test]
    fn energy_balances_every_step_and_socs_stay_in_range() {
        for cloudiness in [0.0, 0.3, 1.0] {
            let mut house = House::new(HouseConfig {
                cloudiness,
                ..HouseConfig::default()
            });
            for r in day(&mut house, 60) {
                let balance = r.pv_w - r.load_w - r.battery_w - r.ev_w - r.grid_w;
                assert!(balance.abs() < 1e-6, "{r:?}");
                assert!((0.0..=100.0).contains(&r.battery_soc), "{r:?}");
                assert!((0.0..=100.0).contains(&r.ev_soc), "{r:?}");
                assert!(r.battery_w.abs() <= 5000.0 + 1e-9);
            }
        }
    }

    #[test]
    fn the_sun_shines_by_day_only_and_clouds_dim_it() {
        let noon = Utc.with_ymd_and_hms(2026, 6, 21, 11, 30, 0).unwrap();
        let night = Utc.with_ymd_and_hms(2026, 6, 21, 23, 0, 0).unwrap();
        let clear = HouseConfig {
            cloudiness: 0.0,
            ..HouseConfig::default()
        };
        let overcast = HouseConfig {
            cloudiness: 1.0,
            ..HouseConfig::default()
        };
        assert!(irradiance(noon, &clear) > 800.0);
        assert_eq!(irradiance(night, &clear), 0.0);
        assert!(irradiance(noon, &overcast) < irradiance(noon, &clear));
    }

    #[test]
    fn the_car_draws_what_the_wallbox_allows_and_its_soc_rises() {
        let mut house = House::new(HouseConfig::default());
        let time = Utc.with_ymd_and_hms(2026, 6, 21, 11, 0, 0).unwrap();
        house.wallbox_current_a = 10.0;
        let first = house.step(time, 3600.0, 2.0);
        assert!((first.ev_w - 10.0 * 3.0 * 230.0).abs() < 1e-9);
        assert!((first.ev_soc - (40.0 + 100.0 * 6900.0 / 60_000.0)).abs() < 1e-6);
        house.wallbox_phases = 1.0;
        assert!((house.step(time, 60.0, 2.0).ev_w - 2300.0).abs() < 1e-9);
        house.wallbox_current_a = 5.0;
        assert_eq!(
            house.step(time, 60.0, 2.0).ev_w,
            0.0,
            "below 6 A a car does not charge"
        );
    }

    #[test]
    fn a_sunny_noon_exports_and_a_dark_evening_imports() {
        let mut house = House::new(HouseConfig {
            cloudiness: 0.0,
            ..HouseConfig::default()
        });
        let noon = Utc.with_ymd_and_hms(2026, 6, 21, 11, 0, 0).unwrap();
        // Fill the battery first so that the surplus goes to the grid.
        for _ in 0..12 {
            house.step(noon, 600.0, 2.0);
        }
        assert!(house.step(noon, 60.0, 2.0).grid_w > 1000.0);
        let evening = Utc.with_ymd_and_hms(2026, 6, 21, 21, 0, 0).unwrap();
        for _ in 0..300 {
            house.step(evening, 600.0, 2.0);
        }
        assert!(
            house.step(evening, 60.0, 2.0).grid_w < 0.0,
            "the battery is drained: import"
        );
    }

    #[test]
    fn a_held_battery_gives_nothing_to_the_car_but_still_charges() {
        let mut house = House::new(HouseConfig::default());
        let night = Utc.with_ymd_and_hms(2026, 6, 21, 23, 0, 0).unwrap();
        house.wallbox_current_a = 16.0;
        let free = house.step(night, 60.0, 2.0);
        assert!(
            free.battery_w < -4000.0,
            "unheld it covers the car: {free:?}"
        );
        house.battery_hold = true;
        let held = house.step(night, 60.0, 2.0);
        assert_eq!(held.battery_w, 0.0, "{held:?}");
        assert!(
            held.grid_w < -11_000.0,
            "the grid gives the car and the house: {held:?}"
        );
        let noon = Utc.with_ymd_and_hms(2026, 6, 21, 11, 0, 0).unwrap();
        house.wallbox_current_a = 0.0;
        assert!(
            house.step(noon, 60.0, 2.0).battery_w > 0.0,
            "a held battery still charges"
        );
    }
}
