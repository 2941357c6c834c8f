//! `pv-forecast backtest`: the model on a user's own exported history.
//!
//! Both files are CSV with a header; the first column is the time stamp of the
//! *start* of each interval (15-minute or hourly), RFC 3339 with an offset, or a
//! local time read in the given time zone, or Unix seconds. The power file's value
//! column is AC power in W (or kW when its header says `kW`); the weather file has
//! `ghi` (or `shortwave_radiation`) and optionally `dni`, `dhi`, `temperature`,
//! `cloud_cover`, in W/m², °C and %.

use crate::forecast::hour_of;
use crate::model::{Model, Sample, Site};
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
    name: String,
    headers: Vec<String>,
    rows: Vec<(DateTime<Utc>, Vec<Option<f64>>)>,
    warnings: Vec<String>,
}

/// `Power (kW)` → `power_kw`: how a header is compared with the documented names.
fn normalise(header: &str) -> String {
    let mut name = String::new();
    for c in header.trim().to_lowercase().chars() {
        match c {
            ')' => {}
            ' ' | '(' | '-' | '/' => {
                if !name.ends_with('_') {
                    name.push('_');
                }
            }
            other => name.push(other),
        }
    }
    name.trim_matches('_').to_string()
}

fn read_table(name: &str, text: &str, zone: Tz) -> Result<Table, String> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| format!("{name}: {e}"))?
        .iter()
        .map(normalise)
        .collect();
    if headers.len() < 2 {
        return Err(format!(
            "{name}: needs a time column and at least one value column"
        ));
    }
    let mut rows = Vec::new();
    let mut local_times = false;
    for (index, record) in reader.records().enumerate() {
        let line = index + 2;
        let record = record.map_err(|e| format!("{name} line {line}: {e}"))?;
        let stamp = record.get(0).unwrap_or("");
        let time = parse_time(stamp, zone)
            .map_err(|e| format!("{name} line {line}, column {}: {e}", headers[0]))?;
        local_times |= is_local(stamp);
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
                        "{name} line {line}, column {}: {field:?} is not a number",
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
    let mut warnings = Vec::new();
    if local_times {
        let changes = clock_changes(rows.iter().map(|(time, _)| *time), zone);
        if !changes.is_empty() {
            warnings.push(format!(
                "{name}: times without an offset are read in {zone}, and they cross the clock change(s) on {}; the hour that happens twice is read as its first occurrence (give times with an offset, e.g. 2026-10-25T02:30:00+01:00, to be exact)",
                changes.join(", ")
            ));
        }
    }
    Ok(Table {
        name: name.to_string(),
        headers,
        rows,
        warnings,
    })
}

/// A time written without an offset (and not as Unix seconds).
fn is_local(stamp: &str) -> bool {
    let stamp = stamp.trim();
    DateTime::parse_from_rfc3339(stamp).is_err()
        && DateTime::parse_from_str(stamp, "%Y-%m-%d %H:%M:%S%:z").is_err()
        && stamp.parse::<i64>().is_err()
}

/// The local dates on which `zone`'s offset changes between consecutive times.
fn clock_changes(times: impl Iterator<Item = DateTime<Utc>>, zone: Tz) -> Vec<String> {
    use chrono::Offset;
    let mut changes = Vec::new();
    let mut last = None;
    for time in times {
        let local = time.with_timezone(&zone);
        let offset = local.offset().fix();
        if let Some(previous) = last {
            if previous != offset {
                changes.push(local.date_naive().to_string());
            }
        }
        last = Some(offset);
    }
    changes.dedup();
    changes
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

/// The one value column whose (normalised) header is one of `names`. Only exact
/// names count: `ghi_clear` is not `ghi`. Two matching columns are an error.
fn column(table: &Table, field: &str, names: &[&str]) -> Result<Option<usize>, String> {
    let found: Vec<usize> = (1..table.headers.len())
        .filter(|index| names.contains(&table.headers[*index].as_str()))
        .collect();
    match found[..] {
        [] => Ok(None),
        [one] => Ok(Some(one)),
        _ => Err(format!(
            "{}: columns {} are all {field}; keep one",
            table.name,
            found
                .iter()
                .map(|index| format!("{:?}", table.headers[*index]))
                .collect::<Vec<_>>()
                .join(" and ")
        )),
    }
}

/// The power file's accepted headers (after lower-casing; `Power (kW)` reads as `power_kw`).
pub const POWER_W_COLUMNS: &[&str] = &[
    "power",
    "power_w",
    "ac_power",
    "ac_power_w",
    "p_ac",
    "p_ac_w",
    "pac",
    "value",
    "state",
];
pub const POWER_KW_COLUMNS: &[&str] = &["power_kw", "ac_power_kw", "p_ac_kw", "pac_kw"];
/// The weather file's accepted headers, by field.
pub const GHI_COLUMNS: &[&str] = &[
    "ghi",
    "ghi_w_m2",
    "shortwave_radiation",
    "global_irradiance",
    "global_horizontal_irradiance",
];
pub const DNI_COLUMNS: &[&str] = &["dni", "dni_w_m2", "direct_normal_irradiance"];
pub const DHI_COLUMNS: &[&str] = &[
    "dhi",
    "dhi_w_m2",
    "diffuse_radiation",
    "diffuse_horizontal_irradiance",
];
pub const TEMPERATURE_COLUMNS: &[&str] = &[
    "temperature",
    "temperature_c",
    "temperature_2m",
    "temp_air",
    "air_temperature",
];
pub const CLOUD_COLUMNS: &[&str] = &["cloud_cover", "cloudcover", "cloud_cover_percent"];

/// What was read, and what the reader should be told about it.
#[derive(Clone, Debug)]
pub struct Read<T> {
    pub value: T,
    pub warnings: Vec<String>,
}

/// Energy (kWh) per hour start from an AC power export named `name`.
pub fn read_power(
    name: &str,
    text: &str,
    zone: Tz,
) -> Result<Read<BTreeMap<DateTime<Utc>, f64>>, String> {
    let table = read_table(name, text, zone)?;
    let watts = column(&table, "power", POWER_W_COLUMNS)?;
    let kilowatts = column(&table, "power", POWER_KW_COLUMNS)?;
    let (column, to_kw) = match (watts, kilowatts) {
        (Some(w), Some(kw)) => {
            return Err(format!(
                "{name}: columns {:?} and {:?} are both power; keep one",
                table.headers[w], table.headers[kw]
            ))
        }
        (Some(w), None) => (w, 0.001),
        (None, Some(kw)) => (kw, 1.0),
        (None, None) => {
            if let Some(energy) = table.headers[1..]
                .iter()
                .find(|h| h.contains("wh") || h.contains("energy"))
            {
                return Err(format!(
                    "{name}: column {energy:?} looks like energy; give AC power in W or kW"
                ));
            }
            return Err(format!(
                "{name}: no power column among {:?}; name it one of {} (W) or {} (kW)",
                &table.headers[1..],
                POWER_W_COLUMNS.join(", "),
                POWER_KW_COLUMNS.join(", ")
            ));
        }
    };
    Ok(Read {
        value: hourly_means(&table, column)
            .into_iter()
            .map(|(hour, mean)| (hour, (mean * to_kw).max(0.0)))
            .collect(),
        warnings: table.warnings.clone(),
    })
}

/// Hourly weather from an export named `name`.
pub fn read_weather(name: &str, text: &str, zone: Tz) -> Result<Read<Vec<WeatherHour>>, String> {
    let table = read_table(name, text, zone)?;
    let ghi = column(&table, "ghi", GHI_COLUMNS)?.ok_or_else(|| {
        format!(
            "{name}: no ghi column among {:?}; name the measured global horizontal irradiance one of {} (a clear-sky column such as ghi_clear is not a measurement)",
            &table.headers[1..],
            GHI_COLUMNS.join(", ")
        )
    })?;
    let optional = |field: &str, names: &[&str]| -> Result<Option<BTreeMap<_, _>>, String> {
        Ok(column(&table, field, names)?.map(|c| hourly_means(&table, c)))
    };
    let dni = optional("dni", DNI_COLUMNS)?;
    let dhi = optional("dhi", DHI_COLUMNS)?;
    let temperature = optional("temperature", TEMPERATURE_COLUMNS)?;
    let cloud = optional("cloud cover", CLOUD_COLUMNS)?;
    let at = |series: &Option<BTreeMap<DateTime<Utc>, f64>>, hour: DateTime<Utc>| {
        series.as_ref().and_then(|s| s.get(&hour).copied())
    };
    Ok(Read {
        value: hourly_means(&table, ghi)
            .into_iter()
            .map(|(start, ghi)| WeatherHour {
                start,
                ghi,
                dni: at(&dni, start),
                dhi: at(&dhi, start),
                temperature_c: at(&temperature, start),
                cloud_cover: at(&cloud, start),
            })
            .collect(),
        warnings: table.warnings.clone(),
    })
}

/// One tested hour, as `--predictions` writes it.
#[derive(Clone, Debug, PartialEq)]
pub struct Prediction {
    pub start: DateTime<Utc>,
    /// Whether the hour is scored: the sun is up at its middle and yesterday's
    /// value (persistence) exists.
    pub scored: bool,
    pub forecast_kwh: f64,
    pub actual_kwh: f64,
    pub physics_kwh: f64,
    pub persistence_kwh: Option<f64>,
}

/// Σ|error| of one predictor over the scored hours.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Score {
    pub absolute_kwh: f64,
}

#[derive(Clone, Debug)]
pub struct Report {
    pub training_days: usize,
    pub tested_days: usize,
    pub zone: Tz,
    pub model_kind: String,
    /// The roof as fitted, or why not; the correction's verdict.
    pub roof: String,
    pub correction: String,
    /// Scored hours and the energy the meter counted in them.
    pub hours: usize,
    pub actual_kwh: f64,
    pub model: Score,
    pub baseline: Score,
    pub persistence: Score,
}

impl Report {
    fn mae(&self, score: Score) -> f64 {
        score.absolute_kwh / self.hours as f64
    }

    fn nmae(&self, score: Score) -> f64 {
        score.absolute_kwh / self.actual_kwh
    }

    /// 1 − Σ|error| / Σ|error of persistence|, over the same hours: above 0 beats
    /// "same hour yesterday".
    pub fn skill_vs_persistence(&self) -> f64 {
        1.0 - self.model.absolute_kwh / self.persistence.absolute_kwh
    }

    pub fn skill_vs_baseline(&self) -> f64 {
        1.0 - self.model.absolute_kwh / self.baseline.absolute_kwh
    }

    pub fn model_nmae(&self) -> f64 {
        self.nmae(self.model)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "trained on {} day(s), forecast {} later day(s) one day ahead",
            self.training_days, self.tested_days
        )?;
        writeln!(
            f,
            "split: the first {} local days ({}) train; every later day is forecast and scored",
            self.training_days, self.zone
        )?;
        writeln!(
            f,
            "scored: {} hours whose middle has the sun above the horizon and that have yesterday's value; the same hours for every row ({:.1} kWh measured)",
            self.hours, self.actual_kwh
        )?;
        writeln!(f, "model in use: {}", self.model_kind)?;
        writeln!(f, "{}", self.roof)?;
        writeln!(f, "{}", self.correction)?;
        writeln!(f, "{:<22} {:>9} {:>7}", "", "MAE kWh", "nMAE")?;
        for (name, score) in [
            ("model", self.model),
            ("physical baseline", self.baseline),
            ("persistence", self.persistence),
        ] {
            writeln!(
                f,
                "{name:<22} {:>9.3} {:>6.1}%",
                self.mae(score),
                self.nmae(score) * 100.0
            )?;
        }
        writeln!(
            f,
            "skill vs persistence  {:+.3}",
            self.skill_vs_persistence()
        )?;
        writeln!(f, "skill vs baseline     {:+.3}", self.skill_vs_baseline())?;
        writeln!(
            f,
            "skill = 1 - sum|error| / sum|error of the reference|, over the scored hours"
        )?;
        write!(f, "note: the weather file stands in for the forecast, so weather-forecast error is not included")
    }
}

/// The report and every tested hour.
#[derive(Clone, Debug)]
pub struct Backtest {
    pub report: Report,
    pub predictions: Vec<Prediction>,
}

/// `--predictions FILE`: one line per tested hour.
pub fn predictions_csv(predictions: &[Prediction]) -> String {
    let mut out = String::from("time,forecast_kwh,actual_kwh,physics_kwh,persistence_kwh,scored\n");
    for p in predictions {
        out.push_str(&format!(
            "{},{:.4},{:.4},{:.4},{},{}\n",
            p.start.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            p.forecast_kwh,
            p.actual_kwh,
            p.physics_kwh,
            p.persistence_kwh
                .map_or(String::new(), |v| format!("{v:.4}")),
            p.scored
        ));
    }
    out
}

/// Trains on the first `train_days` local days that have both power and weather,
/// then forecasts every later day and compares with the meter, the baseline and
/// persistence over the same daylight hours.
pub fn run(
    site: &Site,
    power: &BTreeMap<DateTime<Utc>, f64>,
    weather: &[WeatherHour],
    train_days: usize,
    calibration_days: usize,
    zone: Tz,
) -> Result<Backtest, String> {
    let local_day = |at: DateTime<Utc>| at.with_timezone(&zone).date_naive();
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
        .map(|s| local_day(s.weather.start))
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
        .partition(|s| local_day(s.weather.start) < first_test);
    let model = Model::train(
        site,
        &training,
        train_days.min(7),
        calibration_days,
        Utc::now(),
    );
    let note = |pick: fn(&crate::model::TrainingReport) -> Option<String>| {
        model.report.as_ref().and_then(pick).unwrap_or_default()
    };
    let roof = note(|r| r.calibration_note.clone());
    let correction = note(|r| r.note.clone());
    let physical = Model::default();
    let mut predictions = Vec::new();
    let (mut hours, mut actual_kwh) = (0usize, 0.0);
    let (mut model_abs, mut baseline_abs, mut persistence_abs) = (0.0, 0.0, 0.0);
    for sample in &tests {
        let start = sample.weather.start;
        let sun = site.sun_in_hour(start);
        let persistence = power.get(&(start - Duration::days(1))).copied();
        let prediction = Prediction {
            start,
            scored: sun.is_up() && persistence.is_some(),
            forecast_kwh: model.predict_kwh(site, &sample.weather),
            actual_kwh: sample.actual_kwh,
            physics_kwh: physical.predict_kwh(site, &sample.weather),
            persistence_kwh: persistence,
        };
        if prediction.scored {
            hours += 1;
            actual_kwh += prediction.actual_kwh;
            model_abs += (prediction.forecast_kwh - prediction.actual_kwh).abs();
            baseline_abs += (prediction.physics_kwh - prediction.actual_kwh).abs();
            persistence_abs += (persistence.unwrap_or_default() - prediction.actual_kwh).abs();
        }
        predictions.push(prediction);
    }
    if hours == 0 || actual_kwh <= 0.0 || persistence_abs <= 0.0 {
        return Err("no energy in the tested daylight hours (is the power column right?)".into());
    }
    Ok(Backtest {
        report: Report {
            training_days: train_days,
            tested_days: days.len() - train_days,
            zone,
            model_kind: model.kind().to_string(),
            roof,
            correction,
            hours,
            actual_kwh,
            model: Score {
                absolute_kwh: model_abs,
            },
            baseline: Score {
                absolute_kwh: baseline_abs,
            },
            persistence: Score {
                absolute_kwh: persistence_abs,
            },
        },
        predictions,
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

    fn power(text: &str) -> Result<BTreeMap<DateTime<Utc>, f64>, String> {
        read_power("power.csv", text, berlin()).map(|read| read.value)
    }

    fn weather(text: &str) -> Result<Vec<WeatherHour>, String> {
        read_weather("weather.csv", text, berlin()).map(|read| read.value)
    }

    #[test]
    fn quarter_hours_of_power_become_hourly_kwh_and_gaps_are_dropped() {
        let csv = "time,power (W)\n\
            2026-06-20T10:00:00Z,1000\n2026-06-20T10:15:00Z,2000\n2026-06-20T10:30:00Z,3000\n2026-06-20T10:45:00Z,2000\n\
            2026-06-20T11:00:00Z,4000\n2026-06-20T11:15:00Z,unavailable\n2026-06-20T11:30:00Z,\n2026-06-20T11:45:00Z,4000\n";
        let energy = power(csv).unwrap();
        assert_eq!(energy.len(), 1, "11:00 is only half covered");
        assert_eq!(energy.values().next(), Some(&2.0));
        let kw = "time,Power (kW)\n2026-06-20T10:00:00Z,2.5\n2026-06-20T11:00:00Z,3\n";
        assert_eq!(
            power(kw).unwrap().values().copied().collect::<Vec<_>>(),
            vec![2.5, 3.0]
        );
    }

    #[test]
    fn bad_files_say_which_file_line_and_column() {
        let bad = "time,power\n2026-06-20T10:00:00Z,12\n2026-06-20T11:00:00Z,lots\n";
        assert_eq!(
            power(bad).unwrap_err(),
            "power.csv line 3, column power: \"lots\" is not a number"
        );
        assert_eq!(
            power("time,power\nnoon,12\n").unwrap_err(),
            "power.csv line 2, column time: \"noon\" is not a time (use RFC 3339, \"YYYY-MM-DD HH:MM\" or Unix seconds)"
        );
        let energy = "time,energy_kwh\n2026-06-20T10:00:00Z,1\n";
        assert!(power(energy).unwrap_err().contains("looks like energy"));
        let no_ghi = "time,temperature\n2026-06-20T10:00:00Z,12\n";
        assert!(weather(no_ghi).unwrap_err().contains("no ghi column"));
        assert!(power("time,power\n").unwrap_err().contains("no rows"));
    }

    /// Found on real data: a clear-sky column beside the measurement was taken for it.
    #[test]
    fn only_exact_column_names_count_and_two_candidates_are_an_error() {
        let both = "time,ghi_clear,ghi\n2026-06-20T10:00:00Z,900,450\n";
        assert_eq!(weather(both).unwrap()[0].ghi, 450.0, "the measured column");
        let clear_only = "time,ghi_clear\n2026-06-20T10:00:00Z,900\n";
        let error = weather(clear_only).unwrap_err();
        assert!(
            error.contains("no ghi column among [\"ghi_clear\"]")
                && error.contains("ghi_clear is not a measurement"),
            "{error}"
        );
        let twice = "time,ghi,shortwave_radiation\n2026-06-20T10:00:00Z,450,460\n";
        assert_eq!(
            weather(twice).unwrap_err(),
            "weather.csv: columns \"ghi\" and \"shortwave_radiation\" are all ghi; keep one"
        );
        let watts_and_kw = "time,power,power_kw\n2026-06-20T10:00:00Z,450,0.45\n";
        assert!(power(watts_and_kw).unwrap_err().contains("are both power"));
        let unnamed = "time,pv\n2026-06-20T10:00:00Z,450\n";
        assert!(power(unnamed)
            .unwrap_err()
            .contains("no power column among [\"pv\"]"));
    }

    #[test]
    fn local_times_across_a_clock_change_are_warned_about() {
        let autumn = "time,power\n2026-10-24 12:00,1000\n2026-10-25 12:00,1000\n";
        let read = read_power("power.csv", autumn, berlin()).unwrap();
        assert_eq!(read.warnings.len(), 1);
        assert!(
            read.warnings[0].starts_with(
                "power.csv: times without an offset are read in Europe/Berlin, and they cross the clock change(s) on 2026-10-25"
            ),
            "{:?}",
            read.warnings
        );
        let utc = "time,power\n2026-10-24T12:00:00Z,1000\n2026-10-25T12:00:00Z,1000\n";
        assert!(read_power("power.csv", utc, berlin())
            .unwrap()
            .warnings
            .is_empty());
        let summer = "time,power\n2026-06-24 12:00,1000\n2026-06-25 12:00,1000\n";
        assert!(read_power("power.csv", summer, berlin())
            .unwrap()
            .warnings
            .is_empty());
    }

    #[test]
    fn too_few_days_for_the_split_is_an_error_not_a_number() {
        let site = Site {
            latitude: 52.0,
            longitude: 7.6,
            sun_shift_days: 0,
            arrays: vec![crate::solar::Array {
                kwp: 5.0,
                tilt_deg: 30.0,
                azimuth_deg: 180.0,
                ac_kw: None,
            }],
        };
        let power = power("time,power\n2026-06-20T10:00:00Z,1000\n").unwrap();
        let weather = weather("time,ghi\n2026-06-20T10:00:00Z,500\n").unwrap();
        assert!(run(&site, &power, &weather, 7, 14, berlin())
            .unwrap_err()
            .contains("overlap on 1 day(s)"));
    }
}
