//! Bench binary (not a timed test): against a local mosquitto it measures
//!
//! 1. JSON messages per second handled through `homelab`'s subscribe path (typed
//!    handler on its own worker) vs a raw `rumqttc` client doing the same parse in
//!    its poll loop, and the ratio (goal ≥ 0.9);
//! 2. example-service's idle RSS (goal ≤ 8 MiB) and the time from process start to
//!    its first heartbeat on the broker (goal ≤ 100 ms).
//!
//! Run with `scripts/bench.sh` (builds example-service in release first).
//! `BENCH_MESSAGES` sets the message count per round (default 20000).

use homelab::mqtt::{Message, Mqtt, MqttConfig};
use homelab::testkit::{Broker, Probe};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde::Deserialize;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Notify;

const ROUNDS: usize = 5;

#[derive(Deserialize)]
#[allow(dead_code)] // parsed for the cost of parsing, as a real handler would
struct Sample {
    seq: u64,
    value: f64,
    unit: String,
    entity: String,
    timestamp: String,
    service: String,
}

fn payload(seq: u64) -> Vec<u8> {
    format!(
        r#"{{"seq":{seq},"value":{:.1},"unit":"W","entity":"sensor.pv_power","timestamp":"2026-11-23T01:00:00.000Z","service":"bench"}}"#,
        1234.5 + seq as f64
    )
    .into_bytes()
}

const WARM_UP: u64 = u64::MAX;

/// Publishes a warm-up marker until the subscriber counts it, then `count` messages;
/// returns the seconds from the first real publish until `done` fires.
async fn drive(port: u16, topic: &str, count: u64, seen: &AtomicU64, done: &Notify) -> f64 {
    let publisher = Probe::connect(port, &[]).await;
    while seen.load(Ordering::SeqCst) == 0 {
        publisher
            .publish(topic, payload(WARM_UP), QoS::AtLeastOnce, false)
            .await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    seen.store(1, Ordering::SeqCst);
    let waiting = done.notified();
    tokio::pin!(waiting);
    waiting.as_mut().enable();
    let started = Instant::now();
    for seq in 0..count {
        publisher
            .publish(topic, payload(seq), QoS::AtLeastOnce, false)
            .await;
    }
    tokio::time::timeout(Duration::from_secs(120), waiting)
        .await
        .expect("not every message arrived");
    started.elapsed().as_secs_f64()
}

fn count_and_maybe_finish(sample: &Sample, seen: &AtomicU64, count: u64, done: &Notify) {
    if sample.seq == WARM_UP {
        seen.fetch_max(1, Ordering::SeqCst);
        return;
    }
    if seen.fetch_add(1, Ordering::SeqCst) == count {
        done.notify_one();
    }
}

async fn homelab_rate(broker: &Broker, round: usize, count: u64) -> f64 {
    let settings = broker.settings(&std::env::temp_dir());
    let mqtt = Mqtt::connect(&MqttConfig::probe("bench", &settings));
    let seen = Arc::new(AtomicU64::new(0));
    let done = Arc::new(Notify::new());
    let topic = format!("bench/homelab/{round}");
    let (handler_seen, handler_done) = (seen.clone(), done.clone());
    mqtt.subscribe(&topic, move |message: Message<Sample>| {
        count_and_maybe_finish(&message.payload, &handler_seen, count, &handler_done);
        std::future::ready(Ok(()))
    })
    .await
    .unwrap();
    let seconds = drive(broker.port(), &topic, count, &seen, &done).await;
    mqtt.disconnect(Duration::from_secs(2)).await;
    count as f64 / seconds
}

async fn raw_rate(broker: &Broker, round: usize, count: u64) -> f64 {
    let mut options = MqttOptions::new(format!("raw-bench-{round}"), "127.0.0.1", broker.port());
    options
        .set_clean_session(true)
        .set_max_packet_size(1024 * 1024, 1024 * 1024);
    let (client, mut event_loop) = AsyncClient::new(options, 1024);
    let seen = Arc::new(AtomicU64::new(0));
    let done = Arc::new(Notify::new());
    let topic = format!("bench/raw/{round}");
    client.subscribe(&topic, QoS::AtLeastOnce).await.unwrap();
    let (loop_seen, loop_done) = (seen.clone(), done.clone());
    let task = tokio::spawn(async move {
        loop {
            match event_loop.poll().await {
                Ok(Event::Incoming(Packet::Publish(publish))) => {
                    if let Ok(sample) = serde_json::from_slice::<Sample>(&publish.payload) {
                        count_and_maybe_finish(&sample, &loop_seen, count, &loop_done);
                    }
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    });
    let seconds = drive(broker.port(), &topic, count, &seen, &done).await;
    task.abort();
    count as f64 / seconds
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(|a, b| a.partial_cmp(b).unwrap());
    values[values.len() / 2]
}

fn example_service_binary() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    // target/<profile>/deps/<bench> → target/<profile>/example-service
    let candidate = exe.parent()?.parent()?.join("example-service");
    candidate.is_file().then_some(candidate)
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

async fn example_service_figures(broker: &Broker) {
    let Some(binary) = example_service_binary() else {
        println!("example-service: binary not found next to the bench; run scripts/bench.sh");
        return;
    };
    let mut first_heartbeat_ms = Vec::new();
    let mut idle_rss_kib = Vec::new();
    for run in 0..ROUNDS {
        let data = tempfile::tempdir().unwrap();
        let mut probe = Probe::connect(broker.port(), &["homelab/example-service/heartbeat"]).await;
        let _ = probe.drain(Duration::from_millis(200)).await; // a retained beat from the last run
        let started = Instant::now();
        let mut child = Command::new(&binary)
            .env_clear()
            .env("MQTT_HOST", "127.0.0.1")
            .env("MQTT_PORT", broker.port().to_string())
            .env("DATA_DIR", data.path())
            .env("LOG_LEVEL", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        probe
            .wait_for(
                "homelab/example-service/heartbeat",
                Duration::from_secs(10),
                |beat| beat["status"] == "online",
            )
            .await
            .expect("no heartbeat");
        first_heartbeat_ms.push(started.elapsed().as_secs_f64() * 1000.0);
        if run == 0 || run == ROUNDS - 1 {
            tokio::time::sleep(Duration::from_secs(3)).await;
            if let Some(rss) = rss_kib(child.id()) {
                idle_rss_kib.push(rss as f64);
            }
        }
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        let _ = child.wait();
    }
    let heartbeat = median(first_heartbeat_ms.clone());
    println!(
        "example-service first heartbeat after start: median {heartbeat:.1} ms over {ROUNDS} runs (all: {:?}) — goal ≤ 100 ms: {}",
        first_heartbeat_ms.iter().map(|ms| format!("{ms:.1}")).collect::<Vec<_>>(),
        if heartbeat <= 100.0 { "met" } else { "NOT met" }
    );
    let rss = idle_rss_kib.iter().cloned().fold(0.0, f64::max) / 1024.0;
    println!(
        "example-service idle RSS after 3 s: {rss:.2} MiB (max of {} samples) — goal ≤ 8 MiB: {}",
        idle_rss_kib.len(),
        if rss <= 8.0 { "met" } else { "NOT met" }
    );
}

fn main() {
    let count: u64 = std::env::var("BENCH_MESSAGES")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(20_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let broker = Broker::start();
        let mut homelab_rates = Vec::new();
        let mut raw_rates = Vec::new();
        for round in 0..ROUNDS {
            homelab_rates.push(homelab_rate(&broker, round, count).await);
            raw_rates.push(raw_rate(&broker, round, count).await);
        }
        let (homelab, raw) = (median(homelab_rates), median(raw_rates));
        println!("messages per round: {count} (QoS 1, ~170-byte JSON), {ROUNDS} rounds, medians:");
        println!("  homelab subscribe path: {homelab:>10.0} msg/s");
        println!("  raw rumqttc + parse:    {raw:>10.0} msg/s");
        println!(
            "  ratio homelab/raw:      {:>10.3} — goal ≥ 0.9: {}",
            homelab / raw,
            if homelab / raw >= 0.9 {
                "met"
            } else {
                "NOT met"
            }
        );
        example_service_figures(&broker).await;
    });
}
