//! Every variable this service reads is documented in the repository's `.env.example`.

use std::process::Command;

#[test]
fn every_setting_is_documented_in_env_example() {
    let output = Command::new(env!("CARGO_BIN_EXE_smart-ev-charging"))
        .arg("settings")
        .env_clear()
        .output()
        .unwrap();
    assert!(output.status.success());
    let names = String::from_utf8(output.stdout).unwrap();
    assert!(names.lines().count() > 10, "{names}");

    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../.env.example");
    let documented = std::fs::read_to_string(path).unwrap();
    let missing: Vec<&str> = names
        .lines()
        .filter(|name| {
            !documented.lines().any(|line| {
                line.trim_start_matches("# ")
                    .starts_with(&format!("{name}="))
            })
        })
        .collect();
    assert!(missing.is_empty(), "not in .env.example: {missing:?}");
}
