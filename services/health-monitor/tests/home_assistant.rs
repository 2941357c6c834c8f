//! The entity and infrastructure layers against the real Home Assistant core: an entity
//! going `unavailable`, one that does not exist, HA itself going away. Telegram is the
//! loopback Bot API server of the other tests (see common).

mod common;

use common::{monitor, spawn, until_started, FakeTelegram};
use homelab::ha::HomeAssistant;
use homelab::secret::Secret;
use homelab::testkit::{Broker, HomeAssistantCore};
use serde_json::json;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unavailable_and_missing_entities_and_a_dead_home_assistant_are_alerted() {
    let broker = Broker::start();
    let mut core = HomeAssistantCore::start().await;
    let telegram = FakeTelegram::start().await;
    let data = tempfile::tempdir().unwrap();
    let process = spawn(
        monitor(&broker, &telegram.url, data.path())
            .env("HA_URL", core.url())
            .env("HA_TOKEN", core.token())
            .env(
                "HEALTH_MONITOR_ENTITIES",
                "input_number.pv_power,sensor.renamed_away",
            )
            .env("HEALTH_MONITOR_ENTITY_INTERVAL_SECONDS", "1")
            .env("HEALTH_MONITOR_INFRA_INTERVAL_SECONDS", "1"),
    );
    until_started(&telegram).await;
    let missing = telegram
        .wait_for(
            "sensor.renamed_away does not exist",
            2,
            Duration::from_secs(15),
        )
        .await;
    assert_eq!(missing.len(), 2, "one warning per chat");
    assert!(
        missing[0].text.starts_with("🟠 WARNING"),
        "{}",
        missing[0].text
    );
    assert!(telegram.messages_about("input_number.pv_power").is_empty());
    assert!(
        telegram
            .messages_about("Home Assistant does not answer")
            .is_empty()
            && telegram.messages_about("WebSocket").is_empty(),
        "HA's REST and WebSocket work: no infrastructure alert"
    );

    let ha = HomeAssistant::new(&core.url(), Secret::new(core.token()));
    ha.set_state("input_number.pv_power", "unavailable", &json!({}))
        .await
        .unwrap();
    let unavailable = telegram
        .wait_for(
            "input_number.pv_power is unavailable",
            2,
            Duration::from_secs(15),
        )
        .await;
    assert_eq!(unavailable.len(), 2);
    ha.set_state(
        "input_number.pv_power",
        "1200",
        &json!({"unit_of_measurement": "W"}),
    )
    .await
    .unwrap();
    let back = telegram
        .wait_for("✅ resolved after", 2, Duration::from_secs(15))
        .await;
    assert!(back
        .iter()
        .all(|sent| sent.text.contains("input_number.pv_power is unavailable")));

    core.stop();
    let dead = telegram
        .wait_for("Home Assistant does not answer", 2, Duration::from_secs(60))
        .await;
    assert_eq!(dead.len(), 2);
    assert!(dead[0].text.starts_with("🔴 CRITICAL"), "{}", dead[0].text);
    drop(process);
}
