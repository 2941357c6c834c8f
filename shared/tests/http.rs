//! /healthz, /readyz and /metrics served for real on a free loopback port, next to a
//! real mosquitto; /metrics is read back with an independent parser (prometheus-parse).

use homelab::http::HttpState;
use homelab::mqtt::{Message, Mqtt, MqttConfig};
use homelab::testkit::{free_port, Broker, Probe};
use homelab::CancellationToken;
use std::collections::HashMap;
use std::time::{Duration, Instant};

async fn get(port: u16, path: &str) -> (u16, String) {
    let response = reqwest::get(format!("http://127.0.0.1:{port}{path}"))
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

async fn metrics(port: u16) -> HashMap<String, f64> {
    let (status, text) = get(port, "/metrics").await;
    assert_eq!(status, 200);
    let lines = text.lines().map(|line| Ok(line.to_string()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("/metrics is not Prometheus text");
    scrape
        .samples
        .into_iter()
        .map(|sample| {
            assert_eq!(sample.labels.get("service"), Some("http-test"));
            let value = match sample.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => v,
                other => panic!("unexpected sample {other:?}"),
            };
            (sample.metric, value)
        })
        .collect()
}

#[tokio::test]
async fn health_readiness_and_metrics_follow_the_service() {
    let mut broker = Broker::start();
    let data = tempfile::tempdir().unwrap();
    let mqtt = Mqtt::connect(&MqttConfig::for_service(
        "http-test",
        "1.0.0",
        &broker.settings(data.path()),
    ));
    assert!(mqtt.wait_connected(Duration::from_secs(10)).await);
    let port = free_port();
    let stop = CancellationToken::new();
    // Nothing listens on port 1: the service's HA is down.
    let ha = homelab::ha::HomeAssistant::with_retry(
        "http://127.0.0.1:1",
        homelab::Secret::new("t"),
        homelab::RetryPolicy {
            max_attempts: 1,
            ..Default::default()
        },
    );
    let state = HttpState {
        service: "http-test",
        version: "1.0.0",
        started: Instant::now(),
        data_dir: data.path().to_path_buf(),
        healthcheck_max_age: Duration::from_secs(300),
        mqtt: mqtt.clone(),
        ha: Some(ha.clone()),
        influx: Some(homelab::influx::Influx::new(
            "http://127.0.0.1:1",
            homelab::Secret::new("t"),
            "o",
            "b",
        )),
        health: homelab::http::HealthSlot::default(),
    };
    let degraded = std::sync::Arc::new(std::sync::Mutex::new(None::<String>));
    let reported = degraded.clone();
    let _ = state
        .health
        .set(Box::new(move || match reported.lock().unwrap().clone() {
            Some(reason) => homelab::Health::degraded(reason),
            None => homelab::Health::online(),
        }));
    tokio::spawn(homelab::http::serve(state, port, stop.clone()));
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "http server did not start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let (status, body) = get(port, "/healthz").await;
    assert_eq!(status, 503, "no successful cycle yet: {body}");
    homelab::health::touch(data.path());
    assert_eq!(get(port, "/healthz").await.0, 200);
    assert_eq!(get(port, "/readyz").await.0, 200);
    *degraded.lock().unwrap() = Some("grid meter frozen".into());
    assert_eq!(
        get(port, "/readyz").await,
        (503, "degraded: grid meter frozen\n".to_string()),
        "a degraded service is not ready and says why"
    );
    *degraded.lock().unwrap() = None;
    assert_eq!(get(port, "/readyz").await.0, 200);
    // A service whose configuration uses HA is not ready while HA fails it.
    assert!(ha.get_state("sensor.pv_power").await.is_err());
    assert_eq!(
        get(port, "/readyz").await,
        (
            503,
            "not ready: home assistant at http://127.0.0.1:1 failing\n".to_string()
        )
    );

    let before = metrics(port).await;
    assert_eq!(before["homelab_mqtt_connected"], 1.0);
    assert!(before.contains_key("homelab_ha_requests_total"));
    assert!(before.contains_key("homelab_influx_requests_total"));
    mqtt.subscribe(
        "homelab/http-test/in",
        |_: Message<serde_json::Value>| async { anyhow::bail!("always fails") },
    )
    .await
    .unwrap();
    let probe = Probe::connect(broker.port(), &[]).await;
    for _ in 0..100 {
        probe
            .publish_json("homelab/http-test/in", &serde_json::json!({"n": 1}))
            .await;
        if mqtt.metrics().dead_letters() > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    mqtt.publish("event", &serde_json::json!({"x": 1}))
        .await
        .unwrap();
    let after = metrics(port).await;
    for counter in [
        "homelab_mqtt_messages_in_total",
        "homelab_mqtt_messages_out_total",
        "homelab_mqtt_handler_errors_total",
        "homelab_mqtt_dead_letters_total",
    ] {
        assert!(
            after[counter] > before[counter],
            "{counter} did not move: {} → {}",
            before[counter],
            after[counter]
        );
    }

    broker.stop();
    let deadline = Instant::now() + Duration::from_secs(10);
    while get(port, "/readyz").await.0 != 503 {
        assert!(
            Instant::now() < deadline,
            "/readyz stayed ready with the broker gone"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(metrics(port).await["homelab_mqtt_connected"], 0.0);
    stop.cancel();
}
