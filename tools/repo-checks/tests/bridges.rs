//! An edge site's broker bridged to the main one, with the bridge configuration
//! generated from inventory/topology.yaml: two real mosquittos on loopback. The
//! edge's services publish while the link is up, while it is cut (the main broker
//! stopped), and after it is back: every QoS 1 message reaches a subscriber on the
//! main side, none lost. The counts and the time to catch up are printed.

use homelab::testkit::Broker;
use repo_checks::contracts::{bridge_config, load_topology};
use repo_checks::repo_root;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// A client with a persistent session (QoS 1): what it missed while its broker was
/// down is delivered when it reconnects.
async fn subscriber(port: u16, filter: &str) -> (AsyncClient, mpsc::UnboundedReceiver<String>) {
    let mut options = MqttOptions::new("main-side-listener", "127.0.0.1", port);
    options.set_clean_session(false);
    options.set_keep_alive(Duration::from_secs(5));
    let (client, mut event_loop) = AsyncClient::new(options, 1000);
    let (sender, received) = mpsc::unbounded_channel();
    let (subscribed_tx, mut subscribed) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            match event_loop.poll().await {
                Ok(Event::Incoming(Packet::Publish(publish))) => {
                    let _ = sender.send(String::from_utf8_lossy(&publish.payload).into_owned());
                }
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    let _ = subscribed_tx.send(());
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    });
    client.subscribe(filter, QoS::AtLeastOnce).await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), subscribed.recv())
        .await
        .expect("subscribed");
    (client, received)
}

async fn publish_range(client: &AsyncClient, range: std::ops::Range<u32>) {
    for n in range {
        client
            .publish(
                "homelab/smart-ev-charging/status",
                QoS::AtLeastOnce,
                false,
                n.to_string(),
            )
            .await
            .unwrap();
    }
}

/// Receives until `expected` distinct messages arrived, or `timeout`.
async fn collect(
    received: &mut mpsc::UnboundedReceiver<String>,
    seen: &mut BTreeSet<u32>,
    expected: usize,
    timeout: Duration,
) {
    let deadline = tokio::time::Instant::now() + timeout;
    while seen.len() < expected {
        match tokio::time::timeout_at(deadline, received.recv()).await {
            Ok(Some(payload)) => {
                seen.insert(payload.parse().unwrap());
            }
            _ => return,
        }
    }
}

#[test]
fn the_cli_prints_a_node_s_bridges_and_names_what_is_missing() {
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_bridge-config"))
            .args(args)
            .output()
            .unwrap()
    };
    let ok = run(&["edge", "main=10.0.0.2:1883"]);
    assert!(ok.status.success());
    let text = String::from_utf8_lossy(&ok.stdout);
    assert!(
        text.contains("connection edge-to-main\naddress 10.0.0.2:1883\n")
            && text.contains("topic homelab/# both 1\n")
            && text.contains("topic homeassistant/+/+/+/config out 1\n"),
        "{text}"
    );
    let missing = run(&["edge"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("give the address of [\"main\"]"));
    let unknown = run(&["mars"]);
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no node \"mars\""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_edge_keeps_publishing_through_a_cut_link_and_nothing_is_lost() {
    let topology = load_topology(&repo_root()).unwrap();
    let mut main = Broker::start();
    let main_port = main.port();
    let bridge = bridge_config(&topology, "edge", |node| {
        assert_eq!(node, "main", "the example edge bridges to main");
        format!("127.0.0.1:{main_port}")
    });
    assert!(bridge.contains("topic homelab/# both 1") && bridge.contains("cleansession false"));
    let edge = Broker::start_with(&bridge);
    let (_listener, mut received) = subscriber(main_port, "homelab/#").await;

    // An edge service: it talks only to its own broker.
    let mut options = MqttOptions::new("edge-service", "127.0.0.1", edge.port());
    options.set_keep_alive(Duration::from_secs(5));
    let (service, mut service_loop) = AsyncClient::new(options, 1000);
    tokio::spawn(async move {
        loop {
            if service_loop.poll().await.is_err() {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    });

    let mut seen = BTreeSet::new();
    // Link up: the bridge needs a moment to connect first.
    let deadline = Instant::now() + Duration::from_secs(20);
    while seen.is_empty() {
        assert!(
            Instant::now() < deadline,
            "the bridge never connected: {}",
            edge.log()
        );
        publish_range(&service, 0..1).await;
        collect(&mut received, &mut seen, 1, Duration::from_millis(500)).await;
    }
    publish_range(&service, 1..50).await;
    collect(&mut received, &mut seen, 50, Duration::from_secs(10)).await;
    assert_eq!(seen.len(), 50, "while the link is up");

    // The link is cut: the edge's services keep publishing to their own broker.
    main.stop();
    publish_range(&service, 50..250).await;
    tokio::time::sleep(Duration::from_secs(2)).await;

    // The link is back: the edge's queue drains to the main side.
    let back = Instant::now();
    main.start_again();
    collect(&mut received, &mut seen, 250, Duration::from_secs(60)).await;
    let catch_up = back.elapsed();
    println!(
        "{} of 250 QoS 1 messages on the main side; 200 sent while the link was cut, caught up {} ms after it came back",
        seen.len(),
        catch_up.as_millis()
    );
    let missing: Vec<u32> = (0..250).filter(|n| !seen.contains(n)).collect();
    assert!(
        missing.is_empty(),
        "lost: {missing:?}\nedge log: {}",
        edge.log()
    );
}
