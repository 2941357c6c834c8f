//! `cargo bench -p health-monitor`: how fast a death reaches Telegram, how much memory
//! an idle health-monitor holds, and how many events per second the store takes.
//! Real mosquitto; Telegram is the loopback Bot API server of the tests (the real API
//! cannot be reached from here). Each figure is printed next to a reference measured
//! in the same run: the broker's own delivery time, the goal, and unsynced appends.

#[path = "../tests/common/mod.rs"]
mod common;

use common::{beat, monitor, spawn, until_started, FakeTelegram};
use homelab::mqtt::QoS;
use homelab::testkit::{Broker, Probe};
use std::io::Write;
use std::time::{Duration, Instant};

/// A line of /proc/<pid>/smaps_rollup in MiB: `Rss` (everything resident) or
/// `Anonymous` (heap and stacks; the rest is the binary's and libraries' clean pages).
fn resident_mib(pid: u32, field: &str) -> f64 {
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
    rollup
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|value| {
            value
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<f64>()
                .ok()
        })
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() / 2]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let broker = Broker::start();
    let telegram = FakeTelegram::start().await;
    let data = tempfile::tempdir().unwrap();
    let process = spawn(&mut monitor(&broker, &telegram.url, data.path()));
    until_started(&telegram).await;
    let mut echo = Probe::connect(broker.port(), &["bench/echo"]).await;
    let probe = Probe::connect(broker.port(), &[]).await;

    // Reference: the broker alone, publish → a subscriber has it.
    let mut broker_only = Vec::new();
    for _ in 0..20 {
        let sent = Instant::now();
        probe
            .publish("bench/echo", "x", QoS::AtLeastOnce, false)
            .await;
        echo.next(Duration::from_secs(5)).await.expect("echo");
        broker_only.push(sent.elapsed());
    }

    // A last will (connection_lost) → the alert in the first chat.
    let mut will_to_alert = Vec::new();
    for n in 0..10 {
        let service = format!("bench-will-{n}");
        beat(&probe, &service, "online", None, false).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        let died = Instant::now();
        beat(&probe, &service, "offline", Some("connection_lost"), false).await;
        let alerts = telegram
            .wait_for(&format!("{service} is offline"), 1, Duration::from_secs(10))
            .await;
        will_to_alert.push(alerts[0].at - died);
    }

    // Silence: the last heartbeat (interval 1 s) → the alert; allowed: 3 intervals.
    let mut silence_to_alert = Vec::new();
    for n in 0..5 {
        let service = format!("bench-silent-{n}");
        let last = Instant::now();
        beat(&probe, &service, "online", None, false).await;
        let alerts = telegram
            .wait_for(&format!("{service} is down"), 1, Duration::from_secs(15))
            .await;
        silence_to_alert.push(alerts[0].at - last);
    }

    tokio::time::sleep(Duration::from_secs(3)).await;
    let rss = resident_mib(process.id(), "Rss:");
    let anonymous = resident_mib(process.id(), "Anonymous:");
    drop(process);

    // The event store: synced appends (what the service does) next to unsynced ones.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("events.jsonl");
    let line = br#"{"ts":"2026-11-30T12:00:00Z","type":"service_unhealthy","node":"main","source":"health-monitor","issue_id":"service_down:x"}"#;
    let count = 2000;
    let timed = |sync: bool| {
        let mut out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&file)
            .unwrap();
        let started = Instant::now();
        for _ in 0..count {
            out.write_all(line).unwrap();
            out.write_all(b"\n").unwrap();
            if sync {
                out.sync_data().unwrap();
            }
        }
        count as f64 / started.elapsed().as_secs_f64()
    };
    let unsynced = timed(false);
    let synced = timed(true);

    println!("health-monitor bench (2 cores, loopback broker and Bot API)");
    println!(
        "  reference: broker publish → subscriber, median {:?}",
        median(broker_only)
    );
    println!(
        "  last will → Telegram alert: median {:?}, max {:?} (goal ≤ 5 s)",
        median(will_to_alert.clone()),
        will_to_alert.iter().max().unwrap()
    );
    println!(
        "  last heartbeat → 'down' alert at a 1 s interval: median {:?}, max {:?} (allowed silence 3 s; goal ≤ 2 × interval after it)",
        median(silence_to_alert.clone()),
        silence_to_alert.iter().max().unwrap()
    );
    println!(
        "  idle RSS after the runs: {rss:.1} MiB (goal ≤ 10 MiB), of which {anonymous:.1} MiB anonymous (heap, stacks); the rest is the binary's and libraries' file pages"
    );
    println!("  events appended: {synced:.0}/s synced (each line fsynced) vs {unsynced:.0}/s unsynced reference");
}
