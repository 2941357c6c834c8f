//! Every script in scripts/ is strict bash and answers --help.

use repo_checks::repo_root;
use std::process::Command;

#[test]
fn every_script_is_strict_and_has_help() {
    let mut checked = 0;
    for entry in std::fs::read_dir(repo_root().join("scripts")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("sh") {
            continue;
        }
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with("#!/usr/bin/env bash\n"),
            "{name}: not a bash script"
        );
        assert!(
            text.contains("\nset -euo pipefail\n"),
            "{name}: no set -euo pipefail"
        );
        let help = Command::new("bash")
            .arg(&path)
            .arg("--help")
            .env_clear()
            .output()
            .unwrap();
        let shown = String::from_utf8_lossy(&help.stdout);
        assert!(help.status.success(), "{name} --help failed");
        assert!(shown.contains("usage:"), "{name} --help: {shown}");
        checked += 1;
    }
    assert!(checked >= 12, "only {checked} scripts found");
}

#[test]
fn mqtt_users_replaces_placeholders_with_random_passwords_and_keeps_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let env = dir.path().join(".env");
    std::fs::write(
        &env,
        "MQTT_USERNAME=homelab\nMQTT_PASSWORD=change-me\nMQTT_PASSWORD_PV_FORECAST=kept-secret\n\
         MQTT_PASSWORD_SMART_EV_CHARGING=change-me-smart-ev-charging\nHA_TOKEN=abc\n",
    )
    .unwrap();
    let run = || {
        Command::new("bash")
            .arg(repo_root().join("scripts/mqtt-users.sh"))
            .arg(&env)
            .output()
            .unwrap()
    };
    let first = run();
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let text = std::fs::read_to_string(&env).unwrap();
    let value = |key: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(&format!("{key}=")))
            .unwrap_or_else(|| panic!("{key} missing:\n{text}"))
            .to_string()
    };
    assert_eq!(value("MQTT_PASSWORD_PV_FORECAST"), "kept-secret");
    assert_eq!(value("HA_TOKEN"), "abc");
    let admin = value("MQTT_PASSWORD");
    let charging = value("MQTT_PASSWORD_SMART_EV_CHARGING");
    assert!(admin.len() >= 32 && !admin.contains("change-me"), "{admin}");
    assert!(charging.len() >= 32 && charging != admin);
    // Every identity .env.example names is there (sim-home was missing): also random.
    let example = std::fs::read_to_string(repo_root().join(".env.example")).unwrap();
    for key in example
        .lines()
        .filter_map(|line| line.split_once('=').map(|(key, _)| key))
        .filter(|key| key.starts_with("MQTT_PASSWORD_"))
    {
        let password = value(key);
        assert!(
            password == "kept-secret" || password.len() >= 32,
            "{key}={password}"
        );
    }
    // Twice is harmless: nothing changes.
    assert!(run().status.success());
    assert_eq!(std::fs::read_to_string(&env).unwrap(), text);
}
