//! The Home Assistant client against a real Home Assistant core on loopback
//! (installed by scripts/test.sh into a cached virtualenv). One test, one HA start:
//! HA takes seconds to boot, and every step below builds on the one before.

use homelab::ha::HomeAssistant;
use homelab::testkit::HomeAssistantCore;
use homelab::{CancellationToken, CommonSettings, Secret};
use serde_json::json;
use std::time::Duration;

const EVENT_WAIT: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_against_a_real_home_assistant() {
    let mut core = HomeAssistantCore::start().await;
    let ha = HomeAssistant::new(&core.url(), Secret::new(core.token()));

    // States, and numbers with their units.
    let states = ha.get_states().await.unwrap();
    assert!(
        states
            .iter()
            .any(|s| s.entity_id == "input_number.pv_power"),
        "{states:?}"
    );
    let pv = ha.get_state("input_number.pv_power").await.unwrap();
    assert_eq!(pv.unit(), Some("W"));
    assert_eq!(ha.read_float("input_number.pv_power", -1.0).await, 1500.0);
    let load = ha.read("sensor.house_load").await.unwrap();
    assert_eq!(load.unit.as_deref(), Some("kW"), "a kW sensor stays kW");
    assert_eq!(load.watts(), Some(1500.0));

    // Everything that is not a number gives the default.
    for (entity, what) in [
        ("sensor.dead_meter", "unavailable"),
        ("sensor.unknown_meter", "unknown"),
        ("sensor.text_sensor", "non-numeric"),
        ("sensor.does_not_exist", "missing"),
    ] {
        assert_eq!(
            ha.read_float(entity, -1.0).await,
            -1.0,
            "{what} must give the default"
        );
    }
    assert_eq!(
        ha.get_state("sensor.dead_meter").await.unwrap().state,
        "unavailable"
    );

    // A state_changed subscription filtered to one entity.
    let stop = CancellationToken::new();
    let mut changes =
        ha.subscribe_state_changes(vec!["input_number.ev_charge_current".into()], stop.clone());
    changes
        .wait_subscribed(1, Duration::from_secs(30))
        .await
        .unwrap();

    // call_service changes helpers; only the subscribed one arrives.
    ha.call_service(
        "input_number",
        "set_value",
        &json!({"entity_id": "input_number.pv_power", "value": 4200}),
    )
    .await
    .unwrap();
    ha.call_service(
        "input_number",
        "set_value",
        &json!({"entity_id": "input_number.ev_charge_current", "value": 16}),
    )
    .await
    .unwrap();
    let change = tokio::time::timeout(EVENT_WAIT, changes.next())
        .await
        .expect("no state_changed event")
        .unwrap();
    assert_eq!(
        change.entity_id, "input_number.ev_charge_current",
        "the filter lets only this entity through"
    );
    assert_eq!(change.old_state.unwrap().state, "6.0");
    assert_eq!(change.new_state.unwrap().state, "16.0");
    assert_eq!(
        ha.get_state("input_number.ev_charge_current")
            .await
            .unwrap()
            .state,
        "16.0"
    );
    assert_eq!(
        ha.read("sensor.house_load").await.unwrap().watts(),
        Some(4200.0),
        "the template followed"
    );

    // Safe mode, set_state, fire_event.
    assert!(!ha.is_safe_mode("input_boolean.homelab_safe_mode").await);
    ha.call_service(
        "input_boolean",
        "turn_on",
        &json!({"entity_id": "input_boolean.homelab_safe_mode"}),
    )
    .await
    .unwrap();
    assert!(ha.is_safe_mode("input_boolean.homelab_safe_mode").await);
    ha.set_state(
        "sensor.homelab_test",
        "42",
        &json!({"unit_of_measurement": "W"}),
    )
    .await
    .unwrap();
    assert_eq!(
        ha.read("sensor.homelab_test").await.unwrap().watts(),
        Some(42.0)
    );
    ha.fire_event("homelab_test_event", &json!({"source": "test"}))
        .await
        .unwrap();

    // History of the PV helper holds both values.
    tokio::time::sleep(Duration::from_secs(2)).await; // recorder commit_interval is 1 s
    let now = chrono::Utc::now();
    let history = ha
        .history(
            &["input_number.pv_power"],
            now - chrono::Duration::minutes(30),
            now,
        )
        .await
        .unwrap();
    let values: Vec<&str> = history[0].iter().map(|s| s.state.as_str()).collect();
    assert!(
        values.contains(&"1500.0") && values.contains(&"4200.0"),
        "{values:?}"
    );

    // A wrong token is a permanent error, over REST and over the WebSocket.
    let wrong = HomeAssistant::new(&core.url(), Secret::new("not-a-token"));
    let refused = wrong.get_state("input_number.pv_power").await.unwrap_err();
    assert_eq!((refused.is_transient(), refused.status), (false, Some(401)));
    assert!(refused.to_string().contains("HA_TOKEN"), "{refused}");
    let mut refused_ws = wrong.subscribe_state_changes(Vec::new(), stop.clone());
    let reason = refused_ws
        .wait_subscribed(1, Duration::from_secs(10))
        .await
        .unwrap_err();
    assert!(reason.contains("authentication failed"), "{reason}");
    assert!(
        refused_ws.next().await.is_none(),
        "a refused token stops the subscription"
    );
    let missing = ha.get_state("sensor.nope").await.unwrap_err();
    assert_eq!((missing.is_transient(), missing.status), (false, Some(404)));

    // The diagnose steps pass against it.
    let settings = CommonSettings {
        ha_url: core.url(),
        ha_token: Secret::new(core.token()),
        ..CommonSettings::default()
    };
    for step in homelab::ha::diagnose_steps(&settings) {
        let name = step.name().to_string();
        let report = homelab::diagnose::run(
            "test",
            "0",
            (homelab::Check::pass("ok"), Duration::ZERO),
            vec![step],
        )
        .await;
        assert_eq!(
            report.steps[1].status,
            homelab::diagnose::Outcome::Pass,
            "{name}: {}",
            report.steps[1].detail
        );
    }

    // HA restarts: the subscription comes back by itself and events flow again.
    core.restart().await;
    let back_at = std::time::Instant::now();
    changes
        .wait_subscribed(2, Duration::from_secs(120))
        .await
        .expect("not re-subscribed after the restart");
    // Attempts are at most 5 s apart plus up to as much jitter: HA's answer is not
    // left waiting for half a minute.
    let resubscribed = back_at.elapsed();
    println!("re-subscribed {resubscribed:?} after HA answered again");
    assert!(resubscribed < Duration::from_secs(11), "{resubscribed:?}");
    ha.call_service(
        "input_number",
        "set_value",
        &json!({"entity_id": "input_number.ev_charge_current", "value": 10}),
    )
    .await
    .unwrap();
    let after = loop {
        let change = tokio::time::timeout(EVENT_WAIT, changes.next())
            .await
            .expect("no event after restart")
            .unwrap();
        // HA restores states at start-up; wait for our own change.
        if change.new_state.as_ref().is_some_and(|s| s.state == "10.0") {
            break change;
        }
    };
    assert_eq!(after.entity_id, "input_number.ev_charge_current");

    // HA gone: REST errors are transient, and safe mode fails open.
    core.stop();
    let gone = ha.get_state("input_number.pv_power").await.unwrap_err();
    assert!(gone.is_transient(), "{gone}");
    assert!(
        !ha.is_safe_mode("input_boolean.homelab_safe_mode").await,
        "fails open"
    );
    assert_eq!(ha.read_float("input_number.pv_power", 7.0).await, 7.0);
    stop.cancel();
}
