//! `pv-forecast backtest` as a user runs it, on the synthetic roof (tests/common).

#[path = "common/synthetic.rs"]
mod synthetic;

use std::process::Command;

fn backtest(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    backtest_as(dir, "6/35/170", args)
}

fn backtest_as(dir: &std::path::Path, arrays: &str, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_pv-forecast"))
        .current_dir(dir)
        .env_clear()
        .env("HOME_LATITUDE", "52.0")
        .env("HOME_LONGITUDE", "7.6")
        .env("PV_FORECAST_ARRAYS", arrays)
        .env("TIMEZONE", "Europe/Berlin")
        .arg("backtest")
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn the_backtest_prints_errors_and_beats_persistence_and_the_plain_physics() {
    let dir = tempfile::tempdir().unwrap();
    let (power, weather) = synthetic::history(40, 1);
    std::fs::write(dir.path().join("power.csv"), power).unwrap();
    std::fs::write(dir.path().join("weather.csv"), weather).unwrap();
    let output = backtest(
        dir.path(),
        &[
            "--power",
            "power.csv",
            "--weather",
            "weather.csv",
            "--train-days",
            "28",
            "--predictions",
            "hours.csv",
        ],
    );
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        text.contains("trained on 28 day(s), forecast 13 later day(s)")
            && text.contains("split: the first 28 local days (Europe/Berlin) train"),
        "40 UTC days end on the 41st local day: {text}"
    );
    assert!(
        text.contains("roof fitted: ") && text.contains("correction "),
        "the report says what was fitted and whether the correction is used: {text}"
    );
    let skill = |name: &str| -> f64 {
        let line = text
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{name} in {text}"));
        line.split_whitespace().last().unwrap().parse().unwrap()
    };
    assert!(skill("skill vs persistence") > 0.2, "{text}");
    assert!(skill("skill vs baseline") > 0.0, "{text}");

    // The printed skill is the per-hour file's: sums of errors over the same scored hours.
    let hours = std::fs::read_to_string(dir.path().join("hours.csv")).unwrap();
    let mut lines = hours.lines();
    assert_eq!(
        lines.next(),
        Some("time,forecast_kwh,actual_kwh,physics_kwh,persistence_kwh,scored")
    );
    let (mut model, mut persistence, mut physics, mut scored, mut all) = (0.0, 0.0, 0.0, 0, 0);
    for line in lines {
        let fields: Vec<&str> = line.split(',').collect();
        let number = |i: usize| fields[i].parse::<f64>().unwrap();
        all += 1;
        if fields[5] == "true" {
            scored += 1;
            model += (number(1) - number(2)).abs();
            physics += (number(3) - number(2)).abs();
            persistence += (number(4) - number(2)).abs();
        }
    }
    assert!(all > scored && scored > 100, "{all} hours, {scored} scored");
    assert!(text.contains(&format!("scored: {scored} hours")), "{text}");
    assert!((1.0 - model / persistence - skill("skill vs persistence")).abs() < 0.001);
    assert!((1.0 - model / physics - skill("skill vs baseline")).abs() < 0.001);
}

/// The case: the orientation guessed 15° and 25° off. Fitting the roof to the
/// meter brings the day-ahead error under 0.20, and well below the roof as entered.
#[test]
fn a_wrongly_entered_roof_is_fitted_to_the_meter() {
    let dir = tempfile::tempdir().unwrap();
    let real = pv_forecast::model::Site {
        arrays: vec![pv_forecast::solar::Array {
            kwp: 6.0,
            tilt_deg: 25.0,
            azimuth_deg: 205.0,
            ac_kw: None,
        }],
        ..synthetic::site()
    };
    let (power, weather) = synthetic::history_of(&real, 50, 4);
    std::fs::write(dir.path().join("power.csv"), power).unwrap();
    std::fs::write(dir.path().join("weather.csv"), weather).unwrap();
    let nmae = |calibration_days: &str| -> (f64, String) {
        let output = backtest_as(
            dir.path(),
            "6/40/180",
            &[
                "--power",
                "power.csv",
                "--weather",
                "weather.csv",
                "--calibration-days",
                calibration_days,
            ],
        );
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        let line = text
            .lines()
            .find(|l| l.starts_with("model ") && l.ends_with('%'))
            .unwrap_or_else(|| panic!("{text}"));
        let nmae: f64 = line
            .split_whitespace()
            .last()
            .unwrap()
            .trim_end_matches('%')
            .parse()
            .unwrap();
        (nmae / 100.0, text)
    };
    let (entered, as_entered) = nmae("99");
    let (fitted, text) = nmae("14");
    assert!(
        as_entered.contains("roof as entered: 28 day(s) of history, 99 needed"),
        "{as_entered}"
    );
    assert!(fitted <= 0.20, "{text}");
    assert!(
        fitted < 0.7 * entered,
        "{entered} as entered, {fitted} fitted: {text}"
    );
    let roof = text
        .lines()
        .find(|l| l.starts_with("roof fitted: "))
        .unwrap();
    let number_after = |label: &str| -> f64 {
        roof.split(label)
            .nth(1)
            .unwrap()
            .split('°')
            .next()
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    assert!(
        (number_after("azimuth ") - 205.0).abs() <= 10.0,
        "the azimuth found is near the real one: {roof}"
    );
}

/// `pv-forecast backtest … | head -1`: the reader goes away; no panic, no error.
#[test]
fn a_reader_that_stops_early_ends_it_quietly() {
    use std::io::Read;
    let dir = tempfile::tempdir().unwrap();
    let (power, weather) = synthetic::history(40, 1);
    std::fs::write(dir.path().join("power.csv"), power).unwrap();
    std::fs::write(dir.path().join("weather.csv"), weather).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_pv-forecast"))
        .current_dir(dir.path())
        .env_clear()
        .env("HOME_LATITUDE", "52.0")
        .env("HOME_LONGITUDE", "7.6")
        .env("PV_FORECAST_ARRAYS", "6/35/170")
        .env("TIMEZONE", "Europe/Berlin")
        .args([
            "backtest",
            "--power",
            "power.csv",
            "--weather",
            "weather.csv",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Closed before the report is written, as `head` does once it has its lines.
    drop(child.stdout.take());
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(status.success(), "{status}: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn a_broken_file_names_the_line_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("power.csv"),
        "time,power\n2026-04-01T10:00:00Z,oops\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("weather.csv"),
        "time,ghi\n2026-04-01T10:00:00Z,500\n",
    )
    .unwrap();
    let output = backtest(
        dir.path(),
        &["--power", "power.csv", "--weather", "weather.csv"],
    );
    assert_eq!(output.status.code(), Some(2));
    let error = String::from_utf8_lossy(&output.stderr);
    assert!(
        error.contains("power.csv line 2, column power: \"oops\" is not a number"),
        "{error}"
    );
    let missing = backtest(
        dir.path(),
        &["--power", "nope.csv", "--weather", "weather.csv"],
    );
    assert!(String::from_utf8_lossy(&missing.stderr).contains("nope.csv"));
}
