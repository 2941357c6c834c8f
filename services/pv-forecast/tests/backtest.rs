//! `pv-forecast backtest` as a user runs it, on the synthetic roof (tests/common).

#[path = "common/synthetic.rs"]
mod synthetic;

use std::process::Command;

fn backtest(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_pv-forecast"))
        .current_dir(dir)
        .env_clear()
        .env("HOME_LATITUDE", "52.0")
        .env("HOME_LONGITUDE", "7.6")
        .env("PV_FORECAST_ARRAYS", "6/35/170")
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
        ],
    );
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        text.contains("trained on 28 day(s), forecast 12 later day(s)"),
        "{text}"
    );
    assert!(
        text.contains("model in use: learned"),
        "the roof loses 7 % and clips: {text}"
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
        error.contains("power file line 2: power: \"oops\" is not a number"),
        "{error}"
    );
    let missing = backtest(
        dir.path(),
        &["--power", "nope.csv", "--weather", "weather.csv"],
    );
    assert!(String::from_utf8_lossy(&missing.stderr).contains("nope.csv"));
}
