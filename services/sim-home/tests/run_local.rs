//! The README's first command end to end: scripts/run-local.sh, headless, with the
//! simulated day at 600× (an hour every 6 s), watched over MQTT as a user would.
//! It uses the binaries the test build left in target/debug (`--no-build`).

use homelab::testkit::{free_port, Probe};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::collections::BTreeSet;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SERVICES: [&str; 7] = [
    "sim-home",
    "example-service",
    "pv-forecast",
    "smart-ev-charging",
    "ev-forecast",
    "health-monitor",
    "dashboard",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_run_shows_every_service_working_and_stops_cleanly_on_ctrl_c() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let bin_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map_or(root.join("target"), Into::into)
        .join("debug");
    for service in SERVICES {
        assert!(
            bin_dir.join(service).exists(),
            "build the workspace first: {service} missing in {}",
            bin_dir.display()
        );
    }
    let state = tempfile::tempdir().unwrap();
    let (port, sim_port, web_port) = (free_port(), free_port(), free_port());
    let terminal = state.path().join("terminal.txt");
    let mut script = Command::new("bash")
        .arg(root.join("scripts/run-local.sh"))
        .args([
            "--no-build",
            "--speed",
            "600",
            "--port",
            &port.to_string(),
            "--sim-port",
            &sim_port.to_string(),
            "--web-port",
            &web_port.to_string(),
        ])
        .arg("--state-dir")
        .arg(state.path())
        .env("HEARTBEAT_INTERVAL_SECONDS", "2")
        .env("SIM_START_HOUR", "13")
        // Whatever the developer's shell holds: the assistant is left out, and told why.
        .env_remove("TELEGRAM_BOT_TOKEN")
        .env_remove("TELEGRAM_ALLOWED_CHAT_IDS")
        .stdout(std::fs::File::create(&terminal).unwrap())
        .stderr(Stdio::null())
        // Its own process group, as a shell gives a job: Ctrl-C goes to the whole group.
        .process_group(0)
        .spawn()
        .unwrap();
    let guard = scopeguard(script.id());

    // The broker comes first; connect as soon as it listens.
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "run-local.sh never started its broker"
        );
        if let Some(status) = script.try_wait().unwrap() {
            panic!(
                "run-local.sh exited early with {status}; logs in {}",
                state.path().display()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut probe = Probe::connect(port, &["homelab/#"]).await;

    let mut online = BTreeSet::new();
    let (mut forecast, mut plan, mut charged, mut stopped_at_dusk) = (false, false, false, false);
    let deadline = Instant::now() + Duration::from_secs(150);
    while !(online.len() == SERVICES.len() && forecast && plan && charged && stopped_at_dusk) {
        assert!(
            Instant::now() < deadline,
            "after 150 s: online {online:?}, forecast {forecast}, plan {plan}, charged {charged}, stopped at dusk {stopped_at_dusk}"
        );
        let Some(message) = probe.next(Duration::from_secs(5)).await else {
            continue;
        };
        let Ok(value) = serde_json::from_slice::<serde_json::Value>(&message.payload) else {
            continue;
        };
        let service = message
            .topic
            .split('/')
            .nth(1)
            .unwrap_or_default()
            .to_string();
        match message.topic.rsplit('/').next().unwrap_or_default() {
            "heartbeat" if value["status"] == "online" => {
                online.insert(service);
            }
            "updated" if service == "pv-forecast" => {
                forecast = value["today_kwh"].as_f64().is_some_and(|kwh| kwh > 0.0);
            }
            "plan" if service == "ev-forecast" => {
                plan = value["trips"].as_array().is_some_and(|t| t.len() == 2)
                    && value["energy_needed_kwh"].as_f64().is_some_and(|e| e > 0.0);
            }
            // What the simulated house measures: the car draws while the sun shines,
            // and nothing once the evening has taken the surplus away.
            "status" if service == "sim-home" => {
                let ev_w = value["ev_w"].as_f64().unwrap_or_default();
                let pv_w = value["pv_w"].as_f64().unwrap_or_default();
                if ev_w > 1000.0 && pv_w > 1000.0 {
                    charged = true;
                }
                if charged && pv_w < 100.0 && ev_w == 0.0 {
                    stopped_at_dusk = true;
                }
            }
            _ => {}
        }
    }

    // A second run on the same state folder is refused, and leaves the first alone.
    let second = Command::new("bash")
        .arg(root.join("scripts/run-local.sh"))
        .args(["--no-build", "--duration", "1"])
        .args(["--port", &free_port().to_string()])
        .args(["--sim-port", &free_port().to_string()])
        .arg("--state-dir")
        .arg(state.path())
        .output()
        .unwrap();
    assert_eq!(second.status.code(), Some(1));
    let refusal = String::from_utf8_lossy(&second.stderr);
    assert!(
        refusal.contains(&format!("another run is using {}", state.path().display()))
            && refusal.contains(&format!("pid {}", script.id())),
        "{refusal}"
    );

    // Ctrl-C as a terminal sends it, to the whole process group: each service says
    // offline itself (not by its will, which would mean the broker went first), and its
    // shutdown line reaches the terminal and its log.
    kill(Pid::from_raw(-(script.id() as i32)), Signal::SIGINT).unwrap();
    let mut offline = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while offline.len() < SERVICES.len() && Instant::now() < deadline {
        let Some(message) = probe.next(Duration::from_secs(2)).await else {
            continue;
        };
        if message.topic.ends_with("/heartbeat") && message.json()["status"] == "offline" {
            assert_eq!(
                message.json()["reason"],
                "shutdown",
                "{}: {}",
                message.topic,
                message.json()
            );
            offline.insert(
                message
                    .topic
                    .split('/')
                    .nth(1)
                    .unwrap_or_default()
                    .to_string(),
            );
        }
    }
    assert_eq!(offline.len(), SERVICES.len(), "offline from {offline:?}");
    let status = script.wait().unwrap();
    drop(guard);
    assert!(status.success(), "run-local.sh exited with {status}");
    let printed = std::fs::read_to_string(&terminal).unwrap();
    assert!(
        printed.contains(&format!(
            "dashboard: http://127.0.0.1:{web_port}  (user admin, password "
        )),
        "the dashboard's address and sign-in are printed"
    );
    assert!(
        printed.contains(
            "assistant: not started: export TELEGRAM_BOT_TOKEN and TELEGRAM_ALLOWED_CHAT_IDS to start it"
        ),
        "without a bot the assistant is skipped, saying why:\n{printed}"
    );
    for service in SERVICES {
        let log = std::fs::read_to_string(state.path().join(format!("logs/{service}.log")))
            .unwrap_or_default();
        assert!(
            log.contains("service_stopped"),
            "{service}'s log lacks its shutdown:\n{log}"
        );
        assert!(
            printed
                .lines()
                .any(|line| line.contains(service) && line.contains("service_stopped")),
            "{service}'s shutdown did not reach the terminal"
        );
    }
}

/// Kills the script's whole run if the test fails half-way.
fn scopeguard(pid: u32) -> impl Drop {
    struct Guard(u32);
    impl Drop for Guard {
        fn drop(&mut self) {
            if std::thread::panicking() {
                let _ = kill(Pid::from_raw(self.0 as i32), Signal::SIGTERM);
                std::thread::sleep(Duration::from_secs(3));
            }
        }
    }
    Guard(pid)
}
