//! example-service as a user runs it: the real binary, a real mosquitto, real signals.

use homelab::testkit::{free_port, Broker, Probe, ServiceProcess, Signal};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const BINARY: &str = env!("CARGO_BIN_EXE_example-service");
const WAIT: Duration = Duration::from_secs(10);
const HEARTBEAT: &str = "homelab/example-service/heartbeat";
const COMMANDS: &str = "homelab/orchestrator/command/example-service";

/// A working directory (so no stray `.env` is read) and a `DATA_DIR` inside it.
struct Sandbox {
    dir: tempfile::TempDir,
}

impl Sandbox {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The binary with a clean environment: only what the test sets.
    fn command(&self, port: u16, extra: &[(&str, &str)]) -> Command {
        let mut command = Command::new(BINARY);
        command
            .current_dir(self.dir.path())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("MQTT_HOST", "127.0.0.1")
            .env("MQTT_PORT", port.to_string())
            .env("DATA_DIR", self.data_dir())
            .env("HEARTBEAT_INTERVAL_SECONDS", "1")
            .env("EXAMPLE_INTERVAL_SECONDS", "1")
            .env("LOG_FORMAT", "json")
            .env("LOG_LEVEL", "debug");
        for (key, value) in extra {
            command.env(key, value);
        }
        command
    }

    fn start(&self, port: u16, extra: &[(&str, &str)]) -> ServiceProcess {
        ServiceProcess::spawn(
            self.command(port, extra)
                .stdout(Stdio::null())
                .stderr(Stdio::piped()),
        )
    }

    fn output(&self, port: u16, args: &[&str], extra: &[(&str, &str)]) -> Output {
        self.command(port, extra).args(args).output().unwrap()
    }
}

fn stderr_of(child: ServiceProcess) -> (std::process::ExitStatus, String) {
    let output = child.wait_with_output();
    (
        output.status,
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

async fn online(probe: &mut Probe) -> Value {
    probe
        .wait_for(HEARTBEAT, WAIT, |beat| beat["status"] == "online")
        .await
        .expect("no online heartbeat")
}

#[tokio::test]
async fn heartbeat_carries_the_service_facts() {
    let broker = Broker::start();
    let sandbox = Sandbox::new();
    let mut probe = Probe::connect(broker.port(), &[HEARTBEAT]).await;
    let child = sandbox.start(broker.port(), &[]);
    let beat = online(&mut probe).await;
    assert_eq!(beat["service"], "example-service");
    assert_eq!(beat["version"], env!("CARGO_PKG_VERSION"));
    assert!(beat["uptime_seconds"].as_f64().unwrap() >= 0.0);
    assert!(beat["memory_mb"].as_f64().unwrap() > 0.0, "{beat}");
    assert!(beat["timestamp"].is_string());
    assert!(
        beat.get("cycles").is_some(),
        "the service's own health fields: {beat}"
    );
    child.signal(Signal::SIGTERM);
    let (status, stderr) = stderr_of(child);
    assert!(status.success(), "{stderr}");
    // JSON logs for containers: every line parses and names the service.
    for line in stderr.lines() {
        let entry: Value =
            serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}"));
        assert_eq!(entry["service"], "example-service", "{line}");
    }
}

#[tokio::test]
async fn ping_is_answered_once_per_request_and_bad_commands_are_dead_lettered() {
    let broker = Broker::start();
    let sandbox = Sandbox::new();
    let mut probe = Probe::connect(
        broker.port(),
        &[
            HEARTBEAT,
            "homelab/example-service/pong",
            "homelab/errors/example-service",
        ],
    )
    .await;
    let child = sandbox.start(broker.port(), &[]);
    online(&mut probe).await;

    probe
        .publish_json(COMMANDS, &json!({"command": "ping", "request_id": "r1"}))
        .await;
    probe
        .publish_json(COMMANDS, &json!({"command": "ping", "request_id": "r1"}))
        .await;
    probe
        .publish_json(COMMANDS, &json!({"command": "reboot", "request_id": "x"}))
        .await;
    probe
        .publish(
            COMMANDS,
            "not json at all",
            homelab::QoS::AtLeastOnce,
            false,
        )
        .await;
    probe
        .publish_json(COMMANDS, &json!({"command": "ping", "request_id": "r2"}))
        .await;

    let mut pongs = Vec::new();
    let mut letters = Vec::new();
    for message in probe.drain(Duration::from_secs(3)).await {
        match message.topic.as_str() {
            "homelab/example-service/pong" => pongs.push(message.json()["request_id"].clone()),
            "homelab/errors/example-service" => letters.push(message.json()),
            _ => {}
        }
    }
    assert_eq!(
        pongs,
        vec![json!("r1"), json!("r2")],
        "r1 twice must be answered once"
    );
    assert_eq!(letters.len(), 2, "{letters:?}");
    assert_eq!(letters[0]["error_type"], "handler_error");
    assert!(
        letters[0]["error"].as_str().unwrap().contains("\"reboot\""),
        "{}",
        letters[0]
    );
    assert_eq!(letters[1]["error_type"], "parse_error");
    assert_eq!(letters[1]["payload"], "not json at all");
    assert_eq!(letters[1]["original_topic"], COMMANDS);
    child.signal(Signal::SIGTERM);
    assert!(stderr_of(child).0.success());
}

#[tokio::test]
async fn sigterm_publishes_offline_within_a_second_and_exits_zero() {
    let broker = Broker::start();
    let sandbox = Sandbox::new();
    let mut probe = Probe::connect(broker.port(), &[HEARTBEAT]).await;
    let child = sandbox.start(broker.port(), &[]);
    online(&mut probe).await;

    let sent = Instant::now();
    child.signal(Signal::SIGTERM);
    let offline = probe
        .wait_for(HEARTBEAT, WAIT, |beat| beat["status"] == "offline")
        .await
        .expect("no offline heartbeat");
    let took = sent.elapsed();
    assert!(took < Duration::from_secs(1), "offline after {took:?}");
    assert_eq!(offline["reason"], "shutdown");
    let (status, stderr) = stderr_of(child);
    assert_eq!(status.code(), Some(0), "{stderr}");

    // Retained: a monitor that connects later still sees the service is gone.
    let mut late = Probe::connect(broker.port(), &[HEARTBEAT]).await;
    let retained = late.next(WAIT).await.expect("no retained heartbeat");
    assert!(retained.retain);
    assert_eq!(retained.json()["status"], "offline");
}

#[tokio::test]
async fn sigkill_leaves_the_last_will() {
    let broker = Broker::start();
    let sandbox = Sandbox::new();
    let mut probe = Probe::connect(broker.port(), &[HEARTBEAT]).await;
    let mut child = sandbox.start(broker.port(), &[]);
    online(&mut probe).await;
    child.kill(); // SIGKILL: no chance to say goodbye
    let will = probe
        .wait_for(HEARTBEAT, WAIT, |beat| beat["status"] == "offline")
        .await
        .expect("the broker did not publish the last will");
    assert_eq!(will["reason"], "connection_lost");
    assert_eq!(will["service"], "example-service");
}

#[test]
fn a_bad_setting_stops_start_up_with_one_line_and_exit_code_2() {
    let sandbox = Sandbox::new();
    let output = sandbox.output(1, &[], &[("MQTT_PORT", "abc")]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("MQTT_PORT=\"abc\"") && stderr.contains("expected an integer"),
        "{stderr}"
    );

    let output = sandbox.output(1, &[], &[("EXAMPLE_INTERVAL_SECONDS", "0")]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("EXAMPLE_INTERVAL_SECONDS=\"0\""));
}

#[test]
fn the_env_file_is_read_and_the_environment_wins_over_it() {
    let sandbox = Sandbox::new();
    std::fs::write(sandbox.dir.path().join(".env"), "LOG_FORMAT=yaml\n").unwrap();
    let mut command = sandbox.command(1, &[]);
    command.env_remove("LOG_FORMAT");
    let output = command
        .args(["diagnose", "--step", "config"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "the .env value must be read");
    assert!(String::from_utf8_lossy(&output.stdout).contains("LOG_FORMAT=\"yaml\""));

    // LOG_FORMAT=json from the environment overrides the file.
    let output = sandbox.output(1, &["diagnose", "--step", "config"], &[]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
}

async fn tick_cycle(probe: &mut Probe) -> u64 {
    probe
        .wait_for("homelab/example-service/tick", WAIT, |_| true)
        .await
        .expect("no tick")["cycle"]
        .as_u64()
        .unwrap()
}

#[tokio::test]
async fn state_survives_a_restart_and_a_corrupt_file_is_set_aside() {
    let broker = Broker::start();
    let sandbox = Sandbox::new();
    let mut probe = Probe::connect(broker.port(), &["homelab/example-service/tick"]).await;

    let child = sandbox.start(broker.port(), &[]);
    let mut last = tick_cycle(&mut probe).await;
    while last < 2 {
        last = tick_cycle(&mut probe).await;
    }
    child.signal(Signal::SIGTERM);
    assert!(stderr_of(child).0.success());
    let _ = probe.drain(Duration::from_millis(300)).await;

    let child = sandbox.start(broker.port(), &[]);
    assert_eq!(
        tick_cycle(&mut probe).await,
        last + 1,
        "the counter must continue"
    );
    child.signal(Signal::SIGTERM);
    assert!(stderr_of(child).0.success());
    let _ = probe.drain(Duration::from_millis(300)).await;

    std::fs::write(
        sandbox.data_dir().join("state.json"),
        "{\"saved_at\": broken",
    )
    .unwrap();
    let child = sandbox.start(broker.port(), &[]);
    assert_eq!(
        tick_cycle(&mut probe).await,
        1,
        "a corrupt state starts fresh"
    );
    child.signal(Signal::SIGTERM);
    let (status, stderr) = stderr_of(child);
    assert!(status.success());
    assert!(stderr.contains("state_corrupt_using_default"), "{stderr}");
    let set_aside: Vec<_> = std::fs::read_dir(sandbox.data_dir())
        .unwrap()
        .filter_map(|entry| entry.ok())
        .filter(|entry| {
            entry
                .file_name()
                .to_string_lossy()
                .starts_with("state.json.corrupt-")
        })
        .collect();
    assert_eq!(set_aside.len(), 1);
    assert_eq!(
        std::fs::read_to_string(set_aside[0].path()).unwrap(),
        "{\"saved_at\": broken"
    );
}

fn write_health(data_dir: &Path, seconds_ago: u64) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    std::fs::create_dir_all(data_dir).unwrap();
    std::fs::write(
        data_dir.join("healthcheck"),
        (now - seconds_ago).to_string(),
    )
    .unwrap();
}

#[tokio::test]
async fn healthcheck_follows_the_health_file() {
    let broker = Broker::start();
    let sandbox = Sandbox::new();
    let before = sandbox.output(broker.port(), &["healthcheck"], &[]);
    assert_eq!(before.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&before.stdout).contains("no health file"));

    let mut probe = Probe::connect(broker.port(), &["homelab/example-service/tick"]).await;
    let child = sandbox.start(broker.port(), &[]);
    tick_cycle(&mut probe).await;
    // The cycle publishes its tick before it touches the health file: allow for that.
    let deadline = Instant::now() + WAIT;
    let during = loop {
        let during = sandbox.output(broker.port(), &["healthcheck"], &[]);
        if during.status.code() == Some(0) || Instant::now() > deadline {
            break during;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(
        during.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&during.stdout)
    );
    child.signal(Signal::SIGTERM);
    assert!(stderr_of(child).0.success());

    write_health(&sandbox.data_dir(), 400);
    let stale = sandbox.output(broker.port(), &["healthcheck"], &[]);
    assert_eq!(stale.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&stale.stdout).contains("limit 300s"));
    let lenient = sandbox.output(
        broker.port(),
        &["healthcheck"],
        &[("HEALTHCHECK_MAX_AGE_SECONDS", "600")],
    );
    assert_eq!(lenient.status.code(), Some(0));
}

fn diagnose_json(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&output.stdout)))
}

fn statuses(report: &Value) -> Vec<(String, String)> {
    report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|step| {
            (
                step["name"].as_str().unwrap().to_string(),
                step["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn diagnose_reports_each_step_against_the_real_broker() {
    let broker = Broker::start();
    let sandbox = Sandbox::new();
    let output = sandbox.output(broker.port(), &["diagnose", "--json"], &[]);
    assert_eq!(output.status.code(), Some(0));
    let report = diagnose_json(&output);
    assert_eq!(report["ok"], true);
    assert_eq!(report["service"], "example-service");
    assert_eq!(
        statuses(&report),
        [("config", "pass"), ("mqtt", "pass"), ("data_dir", "pass")]
            .map(|(name, status)| (name.to_string(), status.to_string()))
    );
    assert!(report["steps"][1]["detail"]
        .as_str()
        .unwrap()
        .contains("round trip"));
    assert!(report["steps"][1]["duration_ms"].is_u64());

    let only_config = diagnose_json(&sandbox.output(
        broker.port(),
        &["diagnose", "--json", "--step", "config"],
        &[],
    ));
    assert_eq!(statuses(&only_config).len(), 1);

    let text = sandbox.output(broker.port(), &["diagnose"], &[]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("PASS  mqtt"), "{text}");
    assert!(
        !text.contains('\x1b'),
        "no colour when stdout is not a terminal"
    );

    let unknown = sandbox.output(broker.port(), &["diagnose", "--step", "nonsense"], &[]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("config, mqtt, data_dir"));
}

#[test]
fn diagnose_fails_the_mqtt_step_when_no_broker_listens_and_skips_after_bad_config() {
    let sandbox = Sandbox::new();
    let output = sandbox.output(free_port(), &["diagnose", "--json"], &[]);
    assert_eq!(output.status.code(), Some(1));
    let report = diagnose_json(&output);
    let steps = statuses(&report);
    assert_eq!(steps[0].1, "pass");
    assert_eq!(steps[1], ("mqtt".to_string(), "fail".to_string()));
    assert!(report["steps"][1]["detail"]
        .as_str()
        .unwrap()
        .contains("cannot connect"));
    assert_eq!(steps[2].1, "pass", "steps are independent");

    let output = sandbox.output(
        1,
        &["diagnose", "--json"],
        &[("HEARTBEAT_INTERVAL_SECONDS", "often")],
    );
    assert_eq!(output.status.code(), Some(1));
    let report = diagnose_json(&output);
    assert_eq!(statuses(&report)[0].1, "fail");
    assert!(report["steps"][0]["detail"]
        .as_str()
        .unwrap()
        .contains("HEARTBEAT_INTERVAL_SECONDS"));
}

#[tokio::test]
async fn secrets_never_reach_logs_or_diagnose() {
    let broker = Broker::start();
    let sandbox = Sandbox::new();
    let secrets = [
        ("MQTT_PASSWORD", "mqtt-pw-5f2b9c"),
        ("HA_TOKEN", "ha-token-8d1e7a"),
        ("INFLUXDB_TOKEN", "influx-token-3c4d"),
    ];
    let mut env: Vec<(&str, &str)> = secrets.to_vec();
    env.push(("MQTT_USERNAME", "someone"));
    env.push(("LOG_LEVEL", "trace"));
    let mut probe = Probe::connect(broker.port(), &[HEARTBEAT]).await;
    let child = sandbox.start(broker.port(), &env);
    online(&mut probe).await;
    child.signal(Signal::SIGTERM);
    let (_, logs) = stderr_of(child);
    let diagnose = sandbox.output(broker.port(), &["diagnose", "--json"], &env);
    let shown = format!("{logs}{}", String::from_utf8_lossy(&diagnose.stdout));
    assert!(shown.contains("mqtt_connected"), "the run did log: {logs}");
    for (name, value) in secrets {
        assert!(!shown.contains(value), "{name} leaked");
    }
}

/// Adds the request ids of arriving pongs to `answered` until it holds `count` or
/// `within` passes.
async fn collect_pongs(
    probe: &mut Probe,
    answered: &mut BTreeSet<String>,
    count: usize,
    within: Duration,
) {
    let deadline = Instant::now() + within;
    while answered.len() < count {
        let left = deadline.saturating_duration_since(Instant::now());
        let Some(message) = probe.next(left).await else {
            return; // nothing more within the time
        };
        if message.topic.ends_with("/pong") {
            if let Some(id) = message.json()["request_id"].as_str() {
                answered.insert(id.to_string());
            }
        }
    }
}

/// Issue 12's figure: QoS 1 commands lost across 50 kill -9s of the service = 0.
/// Pings arrive while the service starts, works and dies; a ping is acknowledged only
/// after its pong reached the broker, so each one is answered at least once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_command_is_lost_across_50_kill_9s() {
    let broker = Broker::start();
    let sandbox = Sandbox::new();
    let mut probe =
        Probe::connect(broker.port(), &[HEARTBEAT, "homelab/example-service/pong"]).await;
    let mut child = sandbox.start(broker.port(), &[]);
    online(&mut probe).await; // its persistent session and subscription exist from here on
    let mut sent = 0;
    for round in 0..50u64 {
        for _ in 0..10 {
            probe
                .publish_json(
                    COMMANDS,
                    &json!({"command": "ping", "request_id": sent.to_string()}),
                )
                .await;
            sent += 1;
        }
        // Killed at a different moment each round: starting, handling, idle.
        tokio::time::sleep(Duration::from_millis(20 + (round * 37) % 400)).await;
        child.kill();
        child = sandbox.start(broker.port(), &[]);
    }
    let mut answered = BTreeSet::new();
    collect_pongs(&mut probe, &mut answered, sent, Duration::from_secs(60)).await;
    let lost: Vec<usize> = (0..sent)
        .filter(|id| !answered.contains(&id.to_string()))
        .collect();
    println!(
        "{sent} pings across 50 kill -9s: {} answered, lost {lost:?}",
        answered.len()
    );
    assert!(lost.is_empty(), "pings never answered: {lost:?}");
    child.signal(Signal::SIGTERM);
    assert!(stderr_of(child).0.success());
}

/// A graceful stop with commands still queued: the one being handled is finished,
/// the queued ones are not acknowledged, and the next start answers them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_queued_at_a_graceful_stop_are_answered_after_the_restart() {
    let broker = Broker::start();
    let sandbox = Sandbox::new();
    let mut probe =
        Probe::connect(broker.port(), &[HEARTBEAT, "homelab/example-service/pong"]).await;
    let child = sandbox.start(broker.port(), &[]);
    online(&mut probe).await;
    for id in 0..200 {
        probe
            .publish_json(
                COMMANDS,
                &json!({"command": "ping", "request_id": id.to_string()}),
            )
            .await;
    }
    // Stopped while it works through them: some answered, some received and queued.
    tokio::time::sleep(Duration::from_millis(60)).await;
    child.signal(Signal::SIGTERM);
    assert!(stderr_of(child).0.success());
    let mut answered = BTreeSet::new();
    collect_pongs(&mut probe, &mut answered, 200, Duration::from_millis(300)).await;
    println!("answered before the stop: {}", answered.len());
    let child = sandbox.start(broker.port(), &[]);
    collect_pongs(&mut probe, &mut answered, 200, Duration::from_secs(30)).await;
    assert_eq!(answered.len(), 200, "pings lost across a graceful restart");
    child.signal(Signal::SIGTERM);
    assert!(stderr_of(child).0.success());
}
