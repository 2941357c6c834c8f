//! `cargo bench -p dashboard`: page load, MQTT → SSE latency, idle memory, and 200
//! pages open at once. Real mosquitto on loopback; the dashboard is its release
//! binary. References from the same run: the broker alone, and the sign-in page (no
//! data) next to the full page.

#[path = "../tests/common/mod.rs"]
mod common;

use futures_util::StreamExt;
use homelab::mqtt::QoS;
use homelab::testkit::{Broker, Probe};
use serde_json::json;
use std::time::{Duration, Instant};

fn rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() / 2]
}

async fn timed_get(client: &reqwest::Client, url: &str, needle: &str, runs: usize) -> Duration {
    let mut times = Vec::new();
    for _ in 0..runs {
        let started = Instant::now();
        let body = client.get(url).send().await.unwrap().bytes().await.unwrap();
        assert!(
            String::from_utf8_lossy(&body).contains(needle),
            "{url} is not the page meant"
        );
        times.push(started.elapsed());
    }
    median(times)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let broker = Broker::start();
    let probe = Probe::connect(broker.port(), &[]).await;
    for n in 0..8 {
        let beat =
            json!({"status": "online", "service": format!("service-{n}"), "interval_seconds": 60});
        probe
            .publish(
                &format!("homelab/service-{n}/heartbeat"),
                beat.to_string(),
                QoS::AtLeastOnce,
                true,
            )
            .await;
    }
    let dashboard = common::start(&broker, "bench-password").await;
    let (url, process) = (dashboard.url.clone(), &dashboard.process);
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    client
        .post(format!("{url}/login"))
        .form(&[("username", "admin"), ("password", "bench-password")])
        .send()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle_rss = rss_mib(process.id());
    let login_page = timed_get(&client, &format!("{url}/login"), "Sign in", 50).await;
    let full_page = timed_get(&client, &url, "service-7", 50).await;

    // One open page: heartbeat published → its update event read.
    let mut events = client
        .get(format!("{url}/events"))
        .send()
        .await
        .unwrap()
        .bytes_stream();
    let mut catch_up = String::new();
    while !catch_up.contains("data: actions") {
        catch_up.push_str(&String::from_utf8_lossy(
            &events.next().await.unwrap().unwrap(),
        ));
    }
    let mut latencies = Vec::new();
    for n in 0..30 {
        let beat = json!({"status": "online", "service": "bench", "interval_seconds": 60, "n": n});
        let sent = Instant::now();
        probe
            .publish(
                "homelab/bench/heartbeat",
                beat.to_string(),
                QoS::AtLeastOnce,
                false,
            )
            .await;
        let mut seen = String::new();
        while !seen.contains("data: services") {
            seen.push_str(&String::from_utf8_lossy(
                &events.next().await.unwrap().unwrap(),
            ));
        }
        latencies.push(sent.elapsed());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // 200 pages open at once, each must get the next update.
    let mut streams = Vec::new();
    for _ in 0..200 {
        let response = client.get(format!("{url}/events")).send().await.unwrap();
        streams.push(response.bytes_stream());
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let beat = json!({"status": "online", "service": "bench-200", "interval_seconds": 60});
    let sent = Instant::now();
    probe
        .publish(
            "homelab/bench-200/heartbeat",
            beat.to_string(),
            QoS::AtLeastOnce,
            false,
        )
        .await;
    let mut reached = 0;
    let mut slowest = Duration::ZERO;
    for stream in &mut streams {
        let mut seen = String::new();
        // Past the catch-up events to this update (the bench-200 heartbeat is the only change).
        while seen.matches("data: services").count() < 2 {
            match tokio::time::timeout(Duration::from_secs(5), stream.next()).await {
                Ok(Some(Ok(chunk))) => seen.push_str(&String::from_utf8_lossy(&chunk)),
                _ => break,
            }
        }
        if seen.matches("data: services").count() >= 2 {
            reached += 1;
            slowest = slowest.max(sent.elapsed());
        }
    }
    let rss_200 = rss_mib(process.id());
    drop(streams);

    println!("dashboard bench (2 cores, loopback, release build)");
    println!("  sign-in page (reference, no data): median {login_page:?}; full page with 8 services: median {full_page:?}");
    println!(
        "  MQTT heartbeat → SSE update on an open page: median {:?}, max {:?} (goal ≤ 300 ms)",
        median(latencies.clone()),
        latencies.iter().max().unwrap()
    );
    println!("  idle RSS after sign-in: {idle_rss:.1} MiB (goal ≤ 15 MiB)");
    println!("  200 pages open: {reached}/200 got the next update, the last after {slowest:?}; RSS then {rss_200:.1} MiB");
}
