//! Alerts as a person receives them: a dead service, its recovery, a silent one, the
//! queue while Telegram is away, a restart of health-monitor mid-incident, quiet hours.
//! Real mosquitto; Telegram is a loopback server speaking its Bot API (see common).

mod common;

use common::{beat, monitor, spawn, until_started, FakeTelegram, CHATS};
use homelab::testkit::{Broker, Probe};
use std::time::{Duration, Instant};

fn per_chat(sent: &[common::Sent]) -> Vec<String> {
    let mut chats: Vec<String> = sent.iter().map(|s| s.chat.clone()).collect();
    chats.sort();
    chats
}

#[tokio::test]
async fn a_dead_service_is_alerted_once_per_chat_and_so_is_its_recovery() {
    let broker = Broker::start();
    let telegram = FakeTelegram::start().await;
    let data = tempfile::tempdir().unwrap();
    let process = spawn(&mut monitor(&broker, &telegram.url, data.path()));
    until_started(&telegram).await;
    let probe = Probe::connect(broker.port(), &[]).await;
    let mut ha_view = Probe::connect(
        broker.port(),
        &[
            "homelab/health-monitor/entity/svc_a_problem/state",
            "homeassistant/binary_sensor/homelab_health_monitor/svc_a_problem/config",
        ],
    )
    .await;

    // Its last will: the broker lost svc-a.
    beat(&probe, "svc-a", "online", None, true).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let died = Instant::now();
    beat(&probe, "svc-a", "offline", Some("connection_lost"), true).await;
    let down = telegram
        .wait_for("svc-a is offline", 2, Duration::from_secs(10))
        .await;
    assert_eq!(per_chat(&down), CHATS, "one alert to each chat");
    let latency = down[0].at - died;
    assert!(
        latency < Duration::from_secs(5),
        "last will → alert took {latency:?}"
    );
    assert!(down[0].text.starts_with("🔴 CRITICAL"), "{}", down[0].text);
    // In HA: a problem sensor for svc-a, on.
    let mut config = None;
    let mut problem = None;
    while config.is_none() || problem.as_deref() != Some("ON") {
        let message = ha_view
            .next(Duration::from_secs(10))
            .await
            .expect("discovery and state");
        if message.topic.ends_with("/config") {
            config = Some(message.json());
        } else {
            problem = Some(String::from_utf8_lossy(&message.payload).to_string());
        }
    }
    assert_eq!(config.unwrap()["device_class"], "problem");

    // Still dead for a while: no second alert.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(telegram.messages_about("svc-a is offline").len(), 2);

    beat(&probe, "svc-a", "online", None, true).await;
    let recovered = telegram
        .wait_for("✅ resolved", 2, Duration::from_secs(10))
        .await;
    assert_eq!(per_chat(&recovered), CHATS);
    assert!(recovered[0].text.contains("svc-a is offline"));
    let cleared = ha_view
        .next(Duration::from_secs(10))
        .await
        .expect("problem state off");
    assert_eq!(&cleared.payload[..], b"OFF");

    // A service that just goes silent is down after 3 missed intervals of 1 s.
    beat(&probe, "svc-b", "online", None, false).await;
    let silent_since = Instant::now();
    let silent = telegram
        .wait_for("svc-b is down: no heartbeat", 2, Duration::from_secs(15))
        .await;
    assert_eq!(per_chat(&silent), CHATS);
    let after = silent[0].at - silent_since;
    assert!(
        after >= Duration::from_millis(2500) && after < Duration::from_secs(8),
        "silence → alert took {after:?} (3 intervals of 1 s allowed)"
    );

    let events = common::events(data.path());
    let types: Vec<&str> = events.iter().filter_map(|e| e["type"].as_str()).collect();
    for expected in ["service_unhealthy", "service_recovered", "alert_sent"] {
        assert!(
            types.contains(&expected),
            "{expected} missing from {types:?}"
        );
    }
    drop(process);
}

#[tokio::test]
async fn alerts_wait_for_telegram_and_a_restart_sends_nothing_twice() {
    let broker = Broker::start();
    let telegram = FakeTelegram::start().await;
    let data = tempfile::tempdir().unwrap();
    let first = spawn(&mut monitor(&broker, &telegram.url, data.path()));
    until_started(&telegram).await;
    let probe = Probe::connect(broker.port(), &[]).await;

    // Chat 222 cannot be reached (a 502 from the Bot API).
    telegram.bot.failing.lock().unwrap().insert("222".into());
    beat(&probe, "svc-c", "offline", Some("connection_lost"), true).await;
    let reached = telegram
        .wait_for("svc-c is offline", 1, Duration::from_secs(10))
        .await;
    assert_eq!(per_chat(&reached), ["111"]);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let outbox: Vec<_> = std::fs::read_dir(data.path().join("outbox"))
        .unwrap()
        .collect();
    assert_eq!(outbox.len(), 1, "the alert waits on disk for chat 222");

    // health-monitor restarts mid-incident; the retained heartbeat is read again.
    let output = first.terminate();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let second = spawn(&mut monitor(&broker, &telegram.url, data.path()));
    tokio::time::sleep(Duration::from_secs(4)).await;
    telegram.bot.failing.lock().unwrap().clear();
    let all = telegram
        .wait_for("svc-c is offline", 2, Duration::from_secs(15))
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let all_after = telegram.messages_about("svc-c is offline");
    assert_eq!(
        per_chat(&all_after),
        CHATS,
        "each chat exactly once: {all:?}"
    );
    assert!(std::fs::read_dir(data.path().join("outbox"))
        .unwrap()
        .next()
        .is_none());
    drop(second);
}

#[tokio::test]
async fn quiet_hours_hold_a_warning_but_not_a_critical_alert() {
    let broker = Broker::start();
    let telegram = FakeTelegram::start().await;
    let data = tempfile::tempdir().unwrap();
    let hour = common::local_hour();
    let quiet = format!("{hour}-{}", (hour + 2) % 24);
    let process = spawn(
        monitor(&broker, &telegram.url, data.path()).env("HEALTH_MONITOR_QUIET_HOURS", &quiet),
    );
    // The start-up message is info: held too. Wait for the service's heartbeat instead.
    let mut watcher = Probe::connect(broker.port(), &["homelab/health-monitor/status"]).await;
    assert!(watcher.next(Duration::from_secs(20)).await.is_some());
    let probe = Probe::connect(broker.port(), &[]).await;
    beat(&probe, "svc-d", "degraded", Some("HA unreachable"), true).await;
    beat(&probe, "svc-e", "offline", Some("connection_lost"), true).await;
    let critical = telegram
        .wait_for("svc-e is offline", 2, Duration::from_secs(10))
        .await;
    assert_eq!(
        per_chat(&critical),
        CHATS,
        "critical alerts go out in quiet hours"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        telegram.messages_about("svc-d").is_empty(),
        "the warning waits"
    );
    assert!(
        telegram.messages_about("started").is_empty(),
        "so does the start-up note"
    );
    let status = loop {
        let message = watcher.next(Duration::from_secs(10)).await.expect("status");
        let status = message.json();
        if status["alerts_waiting"].as_u64() >= Some(2) {
            break status;
        }
    };
    assert!(status["issues"]
        .as_array()
        .unwrap()
        .iter()
        .any(|issue| issue["id"] == "service_degraded:svc-d"));
    assert!(
        status["recent_events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|event| event["type"] == "service_unhealthy"
                && event["text"] == "svc-d is degraded: HA unreachable"),
        "the status carries the latest events: {}",
        status["recent_events"]
    );
    drop(process);
}

#[tokio::test]
async fn the_daily_summary_goes_once_a_day_even_across_a_restart() {
    let broker = Broker::start();
    let telegram = FakeTelegram::start().await;
    let data = tempfile::tempdir().unwrap();
    let start = |data: &std::path::Path| {
        spawn(monitor(&broker, &telegram.url, data).env("DAILY_SUMMARY_HOUR", "0"))
    };
    let first = start(data.path());
    let summary = telegram
        .wait_for("Daily summary", 2, Duration::from_secs(20))
        .await;
    assert_eq!(per_chat(&summary), CHATS);
    drop(first.terminate());
    let second = start(data.path());
    until_started(&telegram).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        telegram.messages_about("Daily summary").len(),
        2,
        "not again today"
    );
    drop(second);
}
