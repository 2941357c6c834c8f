//! Where the sun is, and how much of its light falls on a tilted array.
//!
//! Sun position after NOAA's general solar position formulas (Spencer's series),
//! good to a fraction of a degree, which is far below the error of any weather
//! forecast. Irradiance on the plane of the array uses the isotropic-sky model;
//! a forecast that gives only global irradiance is split with the Erbs correlation.

use chrono::{DateTime, Datelike, Timelike, Utc};
use std::f64::consts::PI;

const SOLAR_CONSTANT_W_M2: f64 = 1367.0;
const GROUND_ALBEDO: f64 = 0.2;

/// One PV array: peak power and orientation (azimuth: 0 north, 90 east, 180 south).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Array {
    pub kwp: f64,
    pub tilt_deg: f64,
    pub azimuth_deg: f64,
    /// The inverter's AC limit in kW, when it is below what the modules can make.
    #[serde(default)]
    pub ac_kw: Option<f64>,
}

impl Array {
    /// Parses `kWp/tilt/azimuth[/inverter AC kW]`, e.g. `8.2/30/180` or `8.2/30/180/7`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let parts: Vec<&str> = text.trim().split('/').map(str::trim).collect();
        let (kwp, tilt, azimuth, ac) = match parts[..] {
            [kwp, tilt, azimuth] => (kwp, tilt, azimuth, None),
            [kwp, tilt, azimuth, ac] => (kwp, tilt, azimuth, Some(ac)),
            _ => {
                return Err(format!(
                    "{text:?} is not kWp/tilt/azimuth[/inverter AC kW] (e.g. 8.2/30/180 or 8.2/30/180/7)"
                ))
            }
        };
        let number = |name: &str, value: &str| {
            value
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| format!("{text:?}: {name} {value:?} is not a number"))
        };
        let array = Self {
            kwp: number("kWp", kwp)?,
            tilt_deg: number("tilt", tilt)?,
            azimuth_deg: number("azimuth", azimuth)?,
            ac_kw: ac.map(|ac| number("inverter AC kW", ac)).transpose()?,
        };
        if array.ac_kw.is_some_and(|ac| ac <= 0.0) {
            return Err(format!("{text:?}: the inverter's AC kW must be above 0"));
        }
        if array.kwp <= 0.0 || array.kwp > 1000.0 {
            return Err(format!("{text:?}: kWp must be above 0 and at most 1000"));
        }
        if !(0.0..=90.0).contains(&array.tilt_deg) {
            return Err(format!("{text:?}: tilt must be 0..90 degrees"));
        }
        if !(0.0..=360.0).contains(&array.azimuth_deg) {
            return Err(format!(
                "{text:?}: azimuth must be 0..360 degrees (180 = south)"
            ));
        }
        Ok(array)
    }

    /// Parses a comma-separated list of arrays.
    pub fn parse_list(text: &str) -> Result<Vec<Self>, String> {
        let arrays = text
            .split(',')
            .filter(|part| !part.trim().is_empty())
            .map(Self::parse)
            .collect::<Result<Vec<_>, _>>()?;
        if arrays.is_empty() {
            return Err("no PV array configured (e.g. 8.2/30/180)".into());
        }
        Ok(arrays)
    }
}

/// Sun position seen from a place on earth.
#[derive(Clone, Copy, Debug)]
pub struct SunPosition {
    pub zenith_deg: f64,
    /// From north, clockwise.
    pub azimuth_deg: f64,
    /// Irradiance on a plane facing the sun, above the atmosphere.
    pub extraterrestrial_w_m2: f64,
}

impl SunPosition {
    pub fn cos_zenith(&self) -> f64 {
        self.zenith_deg.to_radians().cos()
    }

    pub fn is_up(&self) -> bool {
        self.zenith_deg < 90.0
    }
}

pub fn sun_position(time: DateTime<Utc>, latitude: f64, longitude: f64) -> SunPosition {
    let day_of_year = f64::from(time.ordinal());
    let hours = f64::from(time.hour())
        + f64::from(time.minute()) / 60.0
        + f64::from(time.second()) / 3600.0;
    let gamma = 2.0 * PI / 365.0 * (day_of_year - 1.0 + (hours - 12.0) / 24.0);
    let equation_of_time_min = 229.18
        * (0.000075 + 0.001868 * gamma.cos()
            - 0.032077 * gamma.sin()
            - 0.014615 * (2.0 * gamma).cos()
            - 0.040849 * (2.0 * gamma).sin());
    let declination = 0.006918 - 0.399912 * gamma.cos() + 0.070257 * gamma.sin()
        - 0.006758 * (2.0 * gamma).cos()
        + 0.000907 * (2.0 * gamma).sin()
        - 0.002697 * (3.0 * gamma).cos()
        + 0.00148 * (3.0 * gamma).sin();
    let true_solar_minutes = hours * 60.0 + equation_of_time_min + 4.0 * longitude;
    let hour_angle = (true_solar_minutes / 4.0 - 180.0).to_radians();
    let phi = latitude.to_radians();
    let cos_zenith = (phi.sin() * declination.sin()
        + phi.cos() * declination.cos() * hour_angle.cos())
    .clamp(-1.0, 1.0);
    let from_south = hour_angle
        .sin()
        .atan2(hour_angle.cos() * phi.sin() - declination.tan() * phi.cos());
    SunPosition {
        zenith_deg: cos_zenith.acos().to_degrees(),
        azimuth_deg: (from_south.to_degrees() + 180.0).rem_euclid(360.0),
        extraterrestrial_w_m2: SOLAR_CONSTANT_W_M2
            * (1.0 + 0.033 * (2.0 * PI * day_of_year / 365.0).cos()),
    }
}

/// Global horizontal irradiance split into its direct-normal and diffuse parts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Irradiance {
    pub ghi: f64,
    pub dni: f64,
    pub dhi: f64,
}

/// Erbs et al. (1982): the diffuse fraction from the clearness index.
pub fn split_global(ghi: f64, sun: &SunPosition) -> Irradiance {
    let ghi = ghi.max(0.0);
    let cos_zenith = sun.cos_zenith();
    // Below ~86° the direct beam is too grazing to separate from the diffuse part.
    if cos_zenith < 0.065 || ghi == 0.0 {
        return Irradiance {
            ghi,
            dni: 0.0,
            dhi: ghi,
        };
    }
    let clearness = (ghi / (sun.extraterrestrial_w_m2 * cos_zenith)).clamp(0.0, 1.0);
    let diffuse_fraction = if clearness <= 0.22 {
        1.0 - 0.09 * clearness
    } else if clearness <= 0.8 {
        0.9511 - 0.1604 * clearness + 4.388 * clearness.powi(2) - 16.638 * clearness.powi(3)
            + 12.336 * clearness.powi(4)
    } else {
        0.165
    };
    let dhi = ghi * diffuse_fraction;
    Irradiance {
        ghi,
        dni: (ghi - dhi) / cos_zenith,
        dhi,
    }
}

/// Irradiance on the array's plane (W/m²), isotropic sky plus ground reflection.
pub fn plane_of_array(irradiance: &Irradiance, sun: &SunPosition, array: &Array) -> f64 {
    let tilt = array.tilt_deg.to_radians();
    let zenith = sun.zenith_deg.to_radians();
    let cos_incidence = zenith.cos() * tilt.cos()
        + zenith.sin() * tilt.sin() * (sun.azimuth_deg - array.azimuth_deg).to_radians().cos();
    let beam = if sun.is_up() {
        irradiance.dni * cos_incidence.max(0.0)
    } else {
        0.0
    };
    let sky = irradiance.dhi * (1.0 + tilt.cos()) / 2.0;
    let ground = irradiance.ghi * GROUND_ALBEDO * (1.0 - tilt.cos()) / 2.0;
    (beam + sky + ground).max(0.0)
}

/// Share of the rated power left at this cell temperature (−0.4 %/K above 25 °C),
/// with the cell warmed by the light on it (NOCT 45 °C).
pub fn temperature_factor(air_temperature_c: f64, poa_w_m2: f64) -> f64 {
    let cell = air_temperature_c + poa_w_m2 * (45.0 - 20.0) / 800.0;
    (1.0 - 0.004 * (cell - 25.0)).clamp(0.5, 1.2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, min, 0).unwrap()
    }

    #[test]
    fn solar_noon_at_the_equinox_stands_at_the_latitude_and_due_south() {
        // Greenwich, 52° N; solar noon is near 12:07 UTC on 20 March.
        let sun = sun_position(at(2026, 3, 20, 12, 7), 52.0, 0.0);
        assert!((sun.zenith_deg - 52.0).abs() < 0.7, "{sun:?}");
        assert!((sun.azimuth_deg - 180.0).abs() < 2.0, "{sun:?}");
    }

    #[test]
    fn the_sun_rises_in_the_east_and_sets_in_the_west_and_is_down_at_night() {
        let morning = sun_position(at(2026, 6, 21, 5, 0), 52.0, 7.6);
        let evening = sun_position(at(2026, 6, 21, 18, 0), 52.0, 7.6);
        let night = sun_position(at(2026, 6, 21, 23, 0), 52.0, 7.6);
        assert!(
            morning.is_up() && (45.0..110.0).contains(&morning.azimuth_deg),
            "{morning:?}"
        );
        assert!(
            evening.is_up() && (250.0..315.0).contains(&evening.azimuth_deg),
            "{evening:?}"
        );
        assert!(!night.is_up());
        let winter_noon = sun_position(at(2026, 12, 21, 11, 30), 52.0, 7.6);
        assert!(
            (winter_noon.zenith_deg - (52.0 + 23.44)).abs() < 1.0,
            "{winter_noon:?}"
        );
    }

    #[test]
    fn a_panel_facing_the_sun_gets_the_full_beam_and_a_flat_one_gets_global() {
        let sun = sun_position(at(2026, 3, 20, 12, 7), 52.0, 0.0);
        let light = Irradiance {
            ghi: 500.0,
            dni: 700.0,
            dhi: 70.0,
        };
        let facing = Array {
            kwp: 1.0,
            tilt_deg: sun.zenith_deg,
            azimuth_deg: 180.0,
            ac_kw: None,
        };
        let flat = Array {
            kwp: 1.0,
            tilt_deg: 0.0,
            azimuth_deg: 180.0,
            ac_kw: None,
        };
        let poa = plane_of_array(&light, &sun, &facing);
        assert!(poa > 700.0 && poa < 700.0 + 70.0 + 20.0, "{poa}");
        let horizontal = plane_of_array(&light, &sun, &flat);
        assert!((horizontal - (700.0 * sun.cos_zenith() + 70.0)).abs() < 1e-6);
    }

    #[test]
    fn east_gets_the_morning_and_west_the_evening() {
        let light = Irradiance {
            ghi: 300.0,
            dni: 500.0,
            dhi: 80.0,
        };
        let east = Array {
            kwp: 1.0,
            tilt_deg: 30.0,
            azimuth_deg: 90.0,
            ac_kw: None,
        };
        let west = Array {
            kwp: 1.0,
            tilt_deg: 30.0,
            azimuth_deg: 270.0,
            ac_kw: None,
        };
        let morning = sun_position(at(2026, 6, 21, 6, 0), 52.0, 7.6);
        let evening = sun_position(at(2026, 6, 21, 17, 0), 52.0, 7.6);
        assert!(
            plane_of_array(&light, &morning, &east) > 2.0 * plane_of_array(&light, &morning, &west)
        );
        assert!(
            plane_of_array(&light, &evening, &west) > 2.0 * plane_of_array(&light, &evening, &east)
        );
    }

    #[test]
    fn erbs_keeps_the_global_sum_and_makes_overcast_light_diffuse() {
        let sun = sun_position(at(2026, 6, 21, 11, 30), 52.0, 7.6);
        for ghi in [50.0, 300.0, 800.0] {
            let split = split_global(ghi, &sun);
            let rebuilt = split.dni * sun.cos_zenith() + split.dhi;
            assert!((rebuilt - ghi).abs() < 1e-6, "{ghi}: {split:?}");
        }
        let dull = split_global(80.0, &sun);
        assert!(dull.dhi / dull.ghi > 0.95, "{dull:?}");
        let clear = split_global(850.0, &sun);
        assert!(clear.dhi / clear.ghi < 0.3, "{clear:?}");
        let night = split_global(5.0, &sun_position(at(2026, 6, 21, 23, 0), 52.0, 7.6));
        assert_eq!(night.dni, 0.0);
    }

    #[test]
    fn hot_cells_lose_power_and_cold_ones_gain() {
        assert!(temperature_factor(35.0, 900.0) < 0.9);
        assert!(temperature_factor(-5.0, 300.0) > 1.0);
    }

    #[test]
    fn arrays_parse_and_bad_ones_say_what_is_wrong() {
        assert_eq!(
            Array::parse_list("8.2/30/180, 3/15/90/2.5").unwrap(),
            vec![
                Array {
                    kwp: 8.2,
                    tilt_deg: 30.0,
                    azimuth_deg: 180.0,
                    ac_kw: None,
                },
                Array {
                    kwp: 3.0,
                    tilt_deg: 15.0,
                    azimuth_deg: 90.0,
                    ac_kw: Some(2.5),
                }
            ]
        );
        assert!(Array::parse("8.2/30/180/0")
            .unwrap_err()
            .contains("AC kW must be above 0"));
        assert!(Array::parse("8.2/30")
            .unwrap_err()
            .contains("kWp/tilt/azimuth"));
        assert!(Array::parse("8.2/95/180").unwrap_err().contains("tilt"));
        assert!(Array::parse("x/30/180").unwrap_err().contains("kWp \"x\""));
        assert!(Array::parse_list(" ").unwrap_err().contains("no PV array"));
    }
}
