//! What ev-forecast's process tests share: asking for a refresh the way the
//! orchestrator does, and reading one step of `diagnose --json`.

#![allow(dead_code)] // each test file uses its own part

use homelab::testkit::Probe;

/// The orchestrator's command: plan again now.
pub async fn refresh(probe: &Probe) {
    probe
        .publish_json(
            "homelab/orchestrator/command/ev-forecast",
            &serde_json::json!({"command": "refresh"}),
        )
        .await;
}

/// `diagnose --json`'s step `name` from a finished run's stdout.
pub fn diagnose_step(stdout: &[u8], name: &str) -> serde_json::Value {
    let report: serde_json::Value = serde_json::from_slice(stdout).unwrap_or_else(|error| {
        panic!(
            "not a JSON report ({error}): {}",
            String::from_utf8_lossy(stdout)
        )
    });
    report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|step| step["name"] == name)
        .unwrap_or_else(|| panic!("no {name} step in {report}"))
        .clone()
}
