//! Home Assistant MQTT discovery end to end: the real Home Assistant core, its MQTT
//! integration set up against a real mosquitto, and entities declared by `homelab`.

use homelab::discovery::{self, Entity};
use homelab::ha::HomeAssistant;
use homelab::mqtt::{Message, Mqtt, MqttConfig};
use homelab::testkit::{Broker, HomeAssistantCore, Probe};
use homelab::Secret;
use std::time::{Duration, Instant};

async fn eventually<F, Fut>(what: &str, check: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(30);
    while !check().await {
        assert!(Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declared_entities_appear_in_home_assistant_and_commands_come_back() {
    let broker = Broker::start();
    let core = HomeAssistantCore::start().await;
    core.connect_mqtt(broker.port()).await;
    let ha = HomeAssistant::new(&core.url(), Secret::new(core.token()));

    let data = tempfile::tempdir().unwrap();
    let mqtt = Mqtt::connect(&MqttConfig::for_service(
        "charger-test",
        "1.2.3",
        &broker.settings(data.path()),
    ));
    assert!(mqtt.wait_connected(Duration::from_secs(10)).await);
    let (commands_tx, mut commands) = tokio::sync::mpsc::unbounded_channel();
    mqtt.subscribe_text(
        &discovery::command_topic("charger-test", "mode"),
        move |message: Message<String>| {
            let _ = commands_tx.send(message.payload);
            async { Ok(()) }
        },
    )
    .await
    .unwrap();

    let entities = [
        Entity::sensor("surplus_power", "PV surplus")
            .unit("W")
            .device_class("power")
            .state_class("measurement"),
        Entity::select(
            "mode",
            "Charging mode",
            &["off", "pv", "min_pv", "fast", "smart"],
        ),
        Entity::number("max_current", "Max current", 6.0, 16.0, 1.0).unit("A"),
    ];
    // The retained configs as a plain MQTT client sees them.
    let mut probe = Probe::connect(broker.port(), &["homeassistant/#"]).await;
    discovery::announce(&mqtt, "1.2.3", &entities)
        .await
        .unwrap();
    let config = probe
        .wait_for(
            "homeassistant/select/homelab_charger_test/mode/config",
            Duration::from_secs(10),
            |_| true,
        )
        .await
        .expect("no discovery config");
    assert_eq!(
        config["command_topic"],
        "homelab/charger-test/entity/mode/set"
    );
    assert_eq!(config["device"]["identifiers"][0], "homelab_charger_test");
    assert_eq!(
        config["availability_topic"],
        "homelab/charger-test/heartbeat"
    );

    // Heartbeat online → available; states show up in HA, with their units.
    mqtt.publish_json(
        &mqtt.topic("heartbeat"),
        &serde_json::json!({"status": "online"}),
        homelab::QoS::AtLeastOnce,
        true,
    )
    .await
    .unwrap();
    discovery::publish_state(&mqtt, "surplus_power", 2300)
        .await
        .unwrap();
    discovery::publish_state(&mqtt, "mode", "pv").await.unwrap();
    discovery::publish_state(&mqtt, "max_current", 16)
        .await
        .unwrap();
    eventually("the sensor never showed 2300 W in HA", || async {
        ha.get_state("sensor.homelab_charger_test_surplus_power")
            .await
            .is_ok_and(|s| s.state == "2300" && s.unit() == Some("W"))
    })
    .await;
    eventually("the select never showed pv", || async {
        ha.get_state("select.homelab_charger_test_mode")
            .await
            .is_ok_and(|s| s.state == "pv")
    })
    .await;
    let select = ha
        .get_state("select.homelab_charger_test_mode")
        .await
        .unwrap();
    assert_eq!(
        select.attributes["options"],
        serde_json::json!(["off", "pv", "min_pv", "fast", "smart"])
    );

    // A person picks "fast" in HA: the command arrives as plain text.
    ha.call_service(
        "select",
        "select_option",
        &serde_json::json!({"entity_id": "select.homelab_charger_test_mode", "option": "fast"}),
    )
    .await
    .unwrap();
    let command = tokio::time::timeout(Duration::from_secs(10), commands.recv())
        .await
        .expect("no command")
        .unwrap();
    assert_eq!(command, "fast");

    // The heartbeat says offline (as the last will does): the entities become unavailable.
    mqtt.publish_json(
        &mqtt.topic("heartbeat"),
        &serde_json::json!({"status": "offline"}),
        homelab::QoS::AtLeastOnce,
        true,
    )
    .await
    .unwrap();
    eventually(
        "the sensor stayed available with the service offline",
        || async {
            ha.get_state("sensor.homelab_charger_test_surplus_power")
                .await
                .is_ok_and(|s| s.state == "unavailable")
        },
    )
    .await;
}
