//! Bad input and faults: decisions on actions that do not exist, malformed payloads,
//! a wrong Telegram token, a full disk under the event store. Real mosquitto;
//! Telegram is a loopback server speaking its Bot API (see common).

mod common;

use common::{beat, monitor, spawn, until_started, FakeTelegram};
use homelab::mqtt::QoS;
use homelab::testkit::{Broker, Probe};
use serde_json::json;
use std::process::Command;
use std::time::Duration;

#[tokio::test]
async fn decisions_on_unknown_actions_and_malformed_payloads_are_refused_clearly() {
    let broker = Broker::start();
    let telegram = FakeTelegram::start().await;
    let data = tempfile::tempdir().unwrap();
    let process = spawn(&mut monitor(&broker, &telegram.url, data.path()));
    until_started(&telegram).await;
    let mut watcher = Probe::connect(
        broker.port(),
        &[
            "homelab/health-monitor/action_result",
            "homelab/errors/health-monitor",
        ],
    )
    .await;
    let probe = Probe::connect(broker.port(), &[]).await;

    probe
        .publish_json(
            "homelab/health-monitor/actions/restart-nope-20261130T120000Z/approve",
            &json!({"by": "anna"}),
        )
        .await;
    let result = watcher
        .wait_for(
            "homelab/health-monitor/action_result",
            Duration::from_secs(10),
            |_| true,
        )
        .await
        .expect("an answer to the decision");
    assert_eq!(result["accepted"], false);
    assert_eq!(result["detail"], "no action restart-nope-20261130T120000Z");

    probe
        .publish(
            "homelab/health-monitor/actions/x/approve",
            "yes please",
            QoS::AtLeastOnce,
            false,
        )
        .await;
    probe
        .publish(
            "homelab/svc-x/heartbeat",
            "{\"status\": \"sideways\"}",
            QoS::AtLeastOnce,
            false,
        )
        .await;
    let mut dead = Vec::new();
    while dead.len() < 2 {
        let letter = watcher
            .wait_for(
                "homelab/errors/health-monitor",
                Duration::from_secs(10),
                |_| true,
            )
            .await
            .expect("malformed payloads are dead-lettered");
        dead.push(
            letter["original_topic"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        );
    }
    dead.sort();
    assert_eq!(
        dead,
        [
            "homelab/health-monitor/actions/x/approve",
            "homelab/svc-x/heartbeat"
        ]
    );

    // The same refusal from the CLI, with the reason and a failing exit code.
    let cli = Command::new(env!("CARGO_BIN_EXE_health-monitor"))
        .args(["actions", "approve", "restart-gone"])
        .env_clear()
        .env("DATA_DIR", data.path())
        .output()
        .unwrap();
    assert!(!cli.status.success());
    assert!(String::from_utf8_lossy(&cli.stderr).contains("no action restart-gone"));

    // Still running, still alerting.
    beat(&probe, "svc-y", "offline", Some("connection_lost"), false).await;
    assert_eq!(
        telegram
            .wait_for("svc-y", 2, Duration::from_secs(10))
            .await
            .len(),
        2
    );
    let refused = common::events(data.path())
        .into_iter()
        .filter(|event| event["type"] == "decision_refused")
        .count();
    assert_eq!(refused, 2, "MQTT and CLI refusals are both events");
    drop(process);
}

// Multi-threaded: the loopback Bot API answers while the test waits for diagnose.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_token_is_named_in_diagnose_and_never_printed() {
    let broker = Broker::start();
    let telegram = FakeTelegram::start().await;
    let data = tempfile::tempdir().unwrap();
    let diagnose = monitor(&broker, &telegram.url, data.path())
        .env("TELEGRAM_BOT_TOKEN", "999:wrong-token-secret")
        .args(["diagnose", "--json", "--step", "telegram"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&diagnose.stdout).to_string()
        + &String::from_utf8_lossy(&diagnose.stderr);
    assert!(text.contains("TELEGRAM_BOT_TOKEN is wrong"), "{text}");
    assert!(!text.contains("wrong-token-secret"), "{text}");
    assert!(!diagnose.status.success());

    let right = monitor(&broker, &telegram.url, data.path())
        .args(["diagnose", "--json", "--step", "telegram"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&right.stdout);
    assert!(text.contains("bot @house_bot, 2 chat(s)"), "{text}");

    // No Docker socket: that layer warns, the rest of diagnose is unaffected.
    let no_docker = monitor(&broker, &telegram.url, data.path())
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .args(["diagnose", "--json"])
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&no_docker.stdout).unwrap();
    let step = |name: &str| {
        report["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|step| step["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no step {name}: {report}"))
    };
    assert_eq!(step("docker")["status"], "warn");
    assert!(step("docker")["detail"]
        .as_str()
        .unwrap()
        .contains("no Docker socket at /nonexistent/docker.sock"));
    assert_eq!(step("telegram")["status"], "pass");
}

/// A disk that fills up: the process may write at most 6 KiB per file (RLIMIT_FSIZE,
/// with SIGXFSZ ignored, set by the shell before it execs health-monitor). The event
/// store must keep whole lines only, and alerts must keep flowing.
#[tokio::test]
async fn a_full_disk_leaves_no_torn_event_line_and_alerts_keep_flowing() {
    let broker = Broker::start();
    let telegram = FakeTelegram::start().await;
    let data = tempfile::tempdir().unwrap();
    let mut command = monitor(&broker, &telegram.url, data.path());
    let binary = command.get_program().to_owned();
    command
        .env("HEALTH_MONITOR_ALERT_COOLDOWN_MINUTES", "0")
        .env("HOMELAB_BINARY", binary);
    let mut shell = Command::new("bash");
    shell.args([
        "-c",
        "trap '' XFSZ; ulimit -f 6; exec \"$HOMELAB_BINARY\" run",
    ]);
    shell
        .env_clear()
        .envs(command.get_envs().filter_map(|(k, v)| v.map(|v| (k, v))))
        .current_dir(data.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let process = spawn(&mut shell);
    until_started(&telegram).await;
    let probe = Probe::connect(broker.port(), &[]).await;
    // Each flap is two events and two alerts; 40 flaps are far more than 6 KiB of events.
    for n in 0..40 {
        let status = if n % 2 == 0 { "degraded" } else { "online" };
        let reason = format!("flap number {n} with a reason long enough to fill lines");
        beat(&probe, "svc-f", status, Some(&reason), false).await;
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    let file = std::fs::read_dir(data.path().join("events"))
        .unwrap()
        .flatten()
        .next()
        .unwrap()
        .path()
        .join("main/events.jsonl");
    // A loaded machine handles the flaps later: wait until the file is near its limit.
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while std::fs::metadata(&file).map_or(0, |m| m.len()) <= 4 * 1024
        && std::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let bytes = std::fs::read(&file).unwrap();
    assert!(
        bytes.len() <= 6 * 1024 && bytes.len() > 4 * 1024,
        "{} bytes",
        bytes.len()
    );
    assert_eq!(
        bytes.last(),
        Some(&b'\n'),
        "the file ends with a whole line"
    );
    let lines = common::events(data.path()); // panics on a torn line
    assert!(lines.len() > 10);
    beat(&probe, "svc-g", "offline", Some("connection_lost"), false).await;
    assert_eq!(
        telegram
            .wait_for("svc-g is offline", 2, Duration::from_secs(10))
            .await
            .len(),
        2,
        "alerts go on with the event store full"
    );
    let output = process.terminate();
    let log = String::from_utf8_lossy(&output.stdout).to_string()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(
        log.contains("event_write_failed"),
        "the failed writes are logged"
    );
}
