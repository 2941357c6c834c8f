//! `pv-forecast backtest`: the model on a user's own exported history.
//!
//! Both files are CSV with a header; the first column is the time stamp of the
//! *start* of each interval (15-minute or hourly), RFC 3339 with an offset, or a
//! local time read in the given time zone, or Unix seconds. The power file's value
//! column is AC power in W (or kW when its header says `kW`); the weather file has
//! `ghi` (or `shortwave_radiation`) and optionally `dni`, `dhi`, `temperature`,
//! `cloud_cover`, in W/m², °C and %.

use crate::forecast::hour_of;
use crate::model::{Error, Model, Sample, Site};
use crate::weather::WeatherHour;
use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

fn parse_time(text: &str, zone: Tz) -> Result<DateTime<Utc>, String> {
    let text = text.trim();
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Ok(time.with_timezone(&Utc));
    }
    if let Ok(time) = DateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%:z") {
        return Ok(time.with_timezone(&Utc));
    }
    for format in [
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(text, format) {
            return zone
                .from_local_datetime(&naive)
                .earliest()
                .map(|t| t.with_timezone(&Utc))
                .ok_or_else(|| format!("{text:?} does not exist in {zone} (a clock change)"));
        }
    }
    if let Ok(seconds) = text.parse::<i64>() {
        return DateTime::from_timestamp(seconds, 0)
            .ok_or_else(|| format!("{text:?} is out of range"));
    }
    Err(format!(
        "{text:?} is not a time (use RFC 3339, \"YYYY-MM-DD HH:MM\" or Unix seconds)"
    ))
}

struct Table {
    headers: Vec<String>,
    rows: Vec<(DateTime<Utc>, Vec<Option<f64>>)>,
}

fn read_table(name: &str, text: &str, zone: Tz) -> Result<Table, String> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| format!("{name}: {e}"))?
        .iter()
        .map(|h| h.to_lowercase())
        .collect();
    if headers.len() < 2 {
        return Err(format!(
            "{name}: needs a time column and at least one value column"
        ));
    }
    let mut rows = Vec::new();
    for (index, record) in reader.records().enumerate() {
        let line = index + 2;
        let record = record.map_err(|e| format!("{name} line {line}: {e}"))?;
        let time = parse_time(record.get(0).unwrap_or(""), zone)
            .map_err(|e| format!("{name} line {line}: {e}"))?;
        let mut values = Vec::new();
        for (column, field) in record.iter().enumerate().skip(1) {
            if field.is_empty()
                || field.eq_ignore_ascii_case("unavailable")
                || field.eq_ignore_ascii_case("unknown")
            {
                values.push(None);
                continue;
            }
            let value = field
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| {
                    format!(
                        "{name} line {line}: {}: {field:?} is not a number",
                        headers[column]
                    )
                })?;
            values.push(Some(value));
        }
        rows.push((time, values));
    }
    if rows.is_empty() {
        return Err(format!("{name}: no rows"));
    }
    rows.sort_by_key(|(time, _)| *time);
    Ok(Table { headers, rows })
}

/// Means per hour of one column, only for hours at least three-quarters covered.
fn hourly_means(table: &Table, column: usize) -> BTreeMap<DateTime<Utc>, f64> {
    let step = table
        .rows
        .windows(2)
        .map(|pair| (pair[1].0 - pair[0].0).num_seconds())
        .filter(|s| *s > 0)
        .min()
        .unwrap_or(3600)
        .min(3600);
    let mut sums: BTreeMap<DateTime<Utc>, (f64, i64)> = BTreeMap::new();
    for (time, values) in &table.rows {
        if let Some(Some(value)) = values.get(column - 1) {
            let entry = sums.entry(hour_of(*time)).or_default();
            entry.0 += value;
            entry.1 += 1;
        }
    }
    sums.into_iter()
        .filter(|(_, (_, count))| count * step * 4 >= 3600 * 3)
        .map(|(hour, (sum, count))| (hour, sum / count as f64))
        .collect()
}

fn find_column(headers: &[String], names: &[&str]) -> Option<usize> {
    headers.iter().position(|h| {
        names.iter().any(|n| {
            h == n
                || h.starts_with(&format!("{n} "))
                || h.starts_with(&format!("{n}_"))
                || h.starts_with(&format!("{n}("))
                || h.starts_with(&format!("{n} ("))
        })
    })
}

/// Energy (kWh) per hour start from an AC power export.
pub fn read_power(text: &str, zone: Tz) -> Result<BTreeMap<DateTime<Utc>, f64>, String> {
    let table = read_table("power file", text, zone)?;
    let column = find_column(
        &table.headers,
        &["power", "ac_power", "value", "state", "w", "kw"],
    )
    .filter(|c| *c > 0)
    .unwrap_or(1);
    let header = &table.headers[column];
    if header.contains("wh") || header.contains("energy") {
        return Err(format!(
            "power file: column {header:?} looks like energy; give AC power in W or kW"
        ));
    }
    let to_kw = if header.contains("kw") { 1.0 } else { 0.001 };
    Ok(hourly_means(&table, column)
        .into_iter()
        .map(|(hour, mean)| (hour, (mean * to_kw).max(0.0)))
        .collect())
}

/// Hourly weather from an export.
pub fn read_weather(text: &str, zone: Tz) -> Result<Vec<WeatherHour>, String> {
    let table = read_table("weather file", text, zone)?;
    let ghi = find_column(
        &table.headers,
        &[
            "ghi",
            "shortwave_radiation",
            "global_irradiance",
            "irradiance",
        ],
    )
    .ok_or_else(|| format!("weather file: no ghi column among {:?}", table.headers))?;
    let optional =
        |names: &[&str]| find_column(&table.headers, names).map(|c| hourly_means(&table, c));
    let dni = optional(&["dni", "direct_normal_irradiance"]);
    let dhi = optional(&["dhi", "diffuse_radiation"]);
    let temperature = optional(&["temperature", "temperature_2m", "temp_air", "temp"]);
    let cloud = optional(&["cloud_cover", "cloudcover", "clouds"]);
    let at = |series: &Option<BTreeMap<DateTime<Utc>, f64>>, hour: DateTime<Utc>| {
        series.as_ref().and_then(|s| s.get(&hour).copied())
    };
    Ok(hourly_means(&table, ghi)
        .into_iter()
        .map(|(start, ghi)| WeatherHour {
            start,
            ghi,
            dni: at(&dni, start),
            dhi: at(&dhi, start),
            temperature_c: at(&temperature, start),
            cloud_cover: at(&cloud, start),
        })
        .collect())
}

#[derive(Clone, Debug)]
pub struct Report {
    pub training_days: usize,
    pub tested_days: usize,
    pub model_kind: String,
    pub model: Error,
    pub baseline: Error,
    pub persistence: Error,
}

impl Report {
    /// 1 − MAE(model) / MAE(persistence): above 0 beats "same hour yesterday".
    pub fn skill_vs_persistence(&self) -> f64 {
        1.0 - self.model.mae_kwh / self.persistence.mae_kwh
    }

    pub fn skill_vs_baseline(&self) -> f64 {
        1.0 - self.model.mae_kwh / self.baseline.mae_kwh
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "trained on {} day(s), forecast {} later day(s) one day ahead ({} hours with light)",
            self.training_days, self.tested_days, self.model.hours
        )?;
        writeln!(f, "model in use: {}", self.model_kind)?;
        writeln!(f, "{:<22} {:>9} {:>7}", "", "MAE kWh", "nMAE")?;
        for (name, error) in [
            ("model", &self.model),
            ("physical baseline", &self.baseline),
            ("persistence", &self.persistence),
        ] {
            writeln!(
                f,
                "{name:<22} {:>9.3} {:>6.1}%",
                error.mae_kwh,
                error.nmae * 100.0
            )?;
        }
        writeln!(
            f,
            "skill vs persistence  {:+.3}",
            self.skill_vs_persistence()
        )?;
        writeln!(f, "skill vs baseline     {:+.3}", self.skill_vs_baseline())?;
        write!(f, "note: the weather file stands in for the forecast, so weather-forecast error is not included")
    }
}

/// Trains on the first `train_days` days that have both power and weather, then
/// forecasts every later day and compares with the meter, the baseline and persistence.
pub fn run(
    site: &Site,
    power: &BTreeMap<DateTime<Utc>, f64>,
    weather: &[WeatherHour],
    train_days: usize,
) -> Result<Report, String> {
    let samples: Vec<Sample> = weather
        .iter()
        .filter_map(|hour| {
            power.get(&hour.start).map(|actual| Sample {
                weather: hour.clone(),
                actual_kwh: *actual,
            })
        })
        .collect();
    let days: Vec<NaiveDate> = samples
        .iter()
        .map(|s| s.weather.start.date_naive())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if days.len() <= train_days {
        return Err(format!(
            "the files overlap on {} day(s); --train-days {train_days} leaves none to test (give more history or fewer training days)",
            days.len()
        ));
    }
    let first_test = days[train_days];
    let (training, tests): (Vec<Sample>, Vec<Sample>) = samples
        .into_iter()
        .partition(|s| s.weather.start.date_naive() < first_test);
    let model = Model::train(site, &training, train_days.min(7), Utc::now());
    let physical = Model::default();
    let mut model_pairs = Vec::new();
    let mut baseline_pairs = Vec::new();
    let mut persistence_pairs = Vec::new();
    for sample in &tests {
        // Hours without a value a day earlier are left out of all three, to compare fairly.
        let Some(yesterday) = power.get(&(sample.weather.start - Duration::days(1))) else {
            continue;
        };
        model_pairs.push((model.predict_kwh(site, &sample.weather), sample.actual_kwh));
        baseline_pairs.push((
            physical.predict_kwh(site, &sample.weather),
            sample.actual_kwh,
        ));
        persistence_pairs.push((*yesterday, sample.actual_kwh));
    }
    let none = || "no energy in the tested days (is the power column right?)".to_string();
    Ok(Report {
        training_days: train_days,
        tested_days: days.len() - train_days,
        model_kind: model.kind().to_string(),
        model: Error::of(model_pairs).ok_or_else(none)?,
        baseline: Error::of(baseline_pairs).ok_or_else(none)?,
        persistence: Error::of(persistence_pairs).ok_or_else(none)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn berlin() -> Tz {
        "Europe/Berlin".parse().unwrap()
    }

    #[test]
    fn times_in_every_accepted_form_land_on_the_same_instant() {
        let expected = "2026-06-20T10:00:00+00:00";
        for text in [
            "2026-06-20T12:00:00+02:00",
            "2026-06-20 12:00:00+02:00",
            "2026-06-20 12:00",
            "2026-06-20T12:00:00",
            "1781949600",
        ] {
            assert_eq!(
                parse_time(text, berlin()).unwrap().to_rfc3339(),
                expected,
                "{text}"
            );
        }
        assert!(parse_time("2026-03-29 02:30", berlin())
            .unwrap_err()
            .contains("clock change"));
        assert!(parse_time("noon", berlin())
            .unwrap_err()
            .contains("not a time"));
    }

    #[test]
    fn quarter_hours_of_power_become_hourly_kwh_and_gaps_are_dropped() {
        let csv = "time,power (W)\n\
            2026-06-20T10:00:00Z,1000\n2026-06-20T10:15:00Z,2000\n2026-06-20T10:30:00Z,3000\n2026-06-20T10:45:00Z,2000\n\
            2026-06-20T11:00:00Z,4000\n2026-06-20T11:15:00Z,unavailable\n2026-06-20T11:30:00Z,\n2026-06-20T11:45:00Z,4000\n";
        let energy = read_power(csv, berlin()).unwrap();
        assert_eq!(energy.len(), 1, "11:00 is only half covered");
        assert_eq!(energy.values().next(), Some(&2.0));
        let kw = "time,power_kw\n2026-06-20T10:00:00Z,2.5\n2026-06-20T11:00:00Z,3\n";
        assert_eq!(
            read_power(kw, berlin())
                .unwrap()
                .values()
                .copied()
                .collect::<Vec<_>>(),
            vec![2.5, 3.0]
        );
    }

    #[test]
    fn bad_files_say_which_line_and_column() {
        let bad = "time,power\n2026-06-20T10:00:00Z,12\n2026-06-20T11:00:00Z,lots\n";
        assert_eq!(
            read_power(bad, berlin()).unwrap_err(),
            "power file line 3: power: \"lots\" is not a number"
        );
        let energy = "time,energy_kwh\n2026-06-20T10:00:00Z,1\n";
        assert!(read_power(energy, berlin())
            .unwrap_err()
            .contains("looks like energy"));
        let no_ghi = "time,temperature\n2026-06-20T10:00:00Z,12\n";
        assert!(read_weather(no_ghi, berlin())
            .unwrap_err()
            .contains("no ghi column"));
        assert!(read_power("time,power\n", berlin())
            .unwrap_err()
            .contains("no rows"));
    }

    #[test]
    fn too_few_days_for_the_split_is_an_error_not_a_number() {
        let site = Site {
            latitude: 52.0,
            longitude: 7.6,
            arrays: vec![crate::solar::Array {
                kwp: 5.0,
                tilt_deg: 30.0,
                azimuth_deg: 180.0,
                ac_kw: None,
            }],
        };
        let power = read_power("time,power\n2026-06-20T10:00:00Z,1000\n", berlin()).unwrap();
        let weather = read_weather("time,ghi\n2026-06-20T10:00:00Z,500\n", berlin()).unwrap();
        assert!(run(&site, &power, &weather, 7)
            .unwrap_err()
            .contains("overlap on 1 day(s)"));
    }
}
