//! sim-home against our own Home Assistant client (homelab::ha), in process.

use homelab::ha::HomeAssistant;
use homelab::Secret;
use sim_home::api::{self, Sim};
use sim_home::physics::HouseConfig;
use std::time::Duration;

async fn serve() -> (std::sync::Arc<Sim>, String) {
    let sim = Sim::new("demo-token", HouseConfig::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let router = api::router(sim.clone());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (sim, url)
}

#[tokio::test]
async fn states_services_history_and_events_work_through_our_client() {
    let (sim, url) = serve().await;
    let ha = HomeAssistant::new(&url, Secret::new("demo-token".to_string()));
    sim.set(api::GRID_POWER, "2500");
    let grid = ha.get_state(api::GRID_POWER).await.unwrap();
    assert_eq!(grid.reading().unwrap().watts(), Some(2500.0));
    assert!(grid.age_seconds().unwrap() < 5.0);
    assert!(grid.attributes["friendly_name"]
        .as_str()
        .unwrap()
        .starts_with("Simulated"));
    assert!(ha.get_states().await.unwrap().len() >= 3);

    // The wallbox current set by a service reaches the physics.
    ha.call_service(
        "number",
        "set_value",
        &serde_json::json!({"entity_id": api::WALLBOX_CURRENT, "value": 10}),
    )
    .await
    .unwrap();
    assert_eq!(
        sim.take_commands(),
        vec![(api::WALLBOX_CURRENT.to_string(), 10.0)]
    );
    assert_eq!(ha.read_float(api::WALLBOX_CURRENT, 0.0).await, 10.0);
    let refused = ha
        .call_service(
            "number",
            "set_value",
            &serde_json::json!({"entity_id": api::WALLBOX_CURRENT, "value": 99}),
        )
        .await
        .unwrap_err();
    assert!(
        !refused.is_transient() && refused.message.contains("out of range"),
        "{refused}"
    );
    assert!(!ha.is_safe_mode(api::SAFE_MODE).await);

    // state_changed over the WebSocket.
    let mut changes = ha.subscribe_state_changes(
        vec![api::PV_POWER.to_string()],
        homelab::CancellationToken::new(),
    );
    changes
        .wait_subscribed(1, Duration::from_secs(5))
        .await
        .unwrap();
    sim.set(api::GRID_POWER, "100"); // filtered out
    sim.set(api::PV_POWER, "4321");
    let change = tokio::time::timeout(Duration::from_secs(5), changes.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(change.entity_id, api::PV_POWER);
    assert_eq!(change.new_state.unwrap().state, "4321");

    let now = chrono::Utc::now();
    let history = ha
        .history(
            &[api::GRID_POWER],
            now - chrono::Duration::hours(1),
            now + chrono::Duration::minutes(1),
        )
        .await
        .unwrap();
    let states: Vec<String> = history[0].iter().map(|s| s.state.clone()).collect();
    assert_eq!(states, vec!["2500", "100"]);
}

#[tokio::test]
async fn a_wrong_token_is_refused_as_home_assistant_does() {
    let (_sim, url) = serve().await;
    let ha = HomeAssistant::new(&url, Secret::new("wrong".to_string()));
    let error = ha.get_state(api::GRID_POWER).await.unwrap_err();
    assert_eq!(error.status, Some(401));
    assert!(!error.is_transient());
    let mut changes = ha.subscribe_state_changes(vec![], homelab::CancellationToken::new());
    assert!(changes
        .wait_subscribed(1, Duration::from_secs(3))
        .await
        .is_err());
}
