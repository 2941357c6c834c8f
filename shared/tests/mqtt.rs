//! The MQTT layer against a real mosquitto started per test on a free loopback port.

use homelab::mqtt::{DeadLetter, Message, Mqtt, MqttConfig};
use homelab::testkit::{Broker, Probe, Received};
use serde::Deserialize;
use serde_json::json;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, Notify};

const WAIT: Duration = Duration::from_secs(10);

fn config(broker: &Broker, service: &str) -> MqttConfig {
    let dir = std::env::temp_dir();
    MqttConfig::for_service(service, "0.0.0-test", &broker.settings(&dir))
}

#[derive(Debug, Deserialize)]
struct Reading {
    value: f64,
}

/// A handler that forwards what it gets, and the receiving end.
// The handler is an unnameable closure type; boxing it just to name it would test a different path.
#[allow(clippy::type_complexity)]
fn forwarder<T: Send + 'static>() -> (
    impl Fn(Message<T>) -> std::future::Ready<anyhow::Result<()>> + Send + Sync + 'static,
    mpsc::UnboundedReceiver<Message<T>>,
) {
    let (sender, receiver) = mpsc::unbounded_channel();
    let handler = move |message: Message<T>| {
        let _ = sender.send(message);
        std::future::ready(Ok(()))
    };
    (handler, receiver)
}

/// SUBSCRIBE is asynchronous: publish a marker until it comes through, so the test
/// proper starts with the subscription known to be in place.
async fn until_subscribed<T>(
    probe: &Probe,
    topic: &str,
    receiver: &mut mpsc::UnboundedReceiver<Message<T>>,
) {
    for _ in 0..100 {
        probe
            .publish_json(topic, &json!({"value": -1.0, "warm_up": true}))
            .await;
        if let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(100), receiver.recv()).await
        {
            // Let any further warm-up copies arrive and drop them.
            while let Ok(Some(_)) =
                tokio::time::timeout(Duration::from_millis(150), receiver.recv()).await
            {
            }
            return;
        }
    }
    panic!("subscription on {topic} never became active");
}

#[tokio::test]
async fn publish_wraps_the_payload_in_the_envelope() {
    let broker = Broker::start();
    let mut probe = Probe::connect(broker.port(), &["homelab/meter/#"]).await;
    let mqtt = Mqtt::connect(&config(&broker, "meter"));
    assert!(mqtt.wait_connected(WAIT).await);

    mqtt.publish("reading", &json!({"value": 1.5}))
        .await
        .unwrap();
    let plain = probe
        .wait_for("homelab/meter/reading", WAIT, |_| true)
        .await
        .expect("no reading");
    assert_eq!(plain["value"], 1.5);
    assert_eq!(plain["service"], "meter");
    let stamp = plain["timestamp"].as_str().unwrap();
    assert!(
        chrono::DateTime::parse_from_rfc3339(stamp).is_ok(),
        "{stamp}"
    );
    assert!(plain.get("trace_id").is_none());

    homelab::envelope::with_trace_id(
        "trace-42".into(),
        mqtt.publish("reading", &json!({"value": 2})),
    )
    .await
    .unwrap();
    let traced = probe
        .wait_for("homelab/meter/reading", WAIT, |_| true)
        .await
        .unwrap();
    assert_eq!(traced["trace_id"], "trace-42");

    assert!(
        mqtt.publish("reading", &json!([1, 2])).await.is_err(),
        "a non-object payload must be refused"
    );
    assert!(mqtt.metrics().messages_out() >= 2);
    mqtt.disconnect(WAIT).await;
}

#[tokio::test]
async fn wildcard_subscriptions_get_exactly_their_topics() {
    let broker = Broker::start();
    let probe = Probe::connect(broker.port(), &[]).await;
    let mqtt = Mqtt::connect(&config(&broker, "watcher"));
    let (plus, mut plus_rx) = forwarder::<Reading>();
    let (hash, mut hash_rx) = forwarder::<Reading>();
    mqtt.subscribe("homelab/+/heartbeat", plus).await.unwrap();
    mqtt.subscribe("homelab/garage/#", hash).await.unwrap();
    until_subscribed(&probe, "homelab/warm/heartbeat", &mut plus_rx).await;
    until_subscribed(&probe, "homelab/garage/warm", &mut hash_rx).await;

    for (topic, value) in [
        ("homelab/pv-forecast/heartbeat", 1.0),
        ("homelab/garage/door/state", 2.0),
        ("homelab/other/thing", 3.0),
        ("homelab/pv-forecast/heartbeat/extra", 4.0),
        ("homelab/garage", 5.0),
    ] {
        probe.publish_json(topic, &json!({"value": value})).await;
    }
    let mut plus_got = Vec::new();
    while let Ok(Some(message)) =
        tokio::time::timeout(Duration::from_millis(700), plus_rx.recv()).await
    {
        plus_got.push((message.topic, message.payload.value));
    }
    let mut hash_got = Vec::new();
    while let Ok(Some(message)) =
        tokio::time::timeout(Duration::from_millis(300), hash_rx.recv()).await
    {
        hash_got.push((message.topic, message.payload.value));
    }
    assert_eq!(
        plus_got,
        vec![("homelab/pv-forecast/heartbeat".to_string(), 1.0)]
    );
    // `#` also matches the parent level itself.
    assert_eq!(
        hash_got,
        vec![
            ("homelab/garage/door/state".to_string(), 2.0),
            ("homelab/garage".to_string(), 5.0)
        ]
    );
    assert!(mqtt
        .subscribe("homelab/#/bad", forwarder::<Reading>().0)
        .await
        .is_err());
}

#[tokio::test]
async fn a_handler_continues_the_trace_of_the_message_it_handles() {
    let broker = Broker::start();
    let mut probe = Probe::connect(broker.port(), &["homelab/responder/answer"]).await;
    let mqtt = Mqtt::connect(&config(&broker, "responder"));
    let replier = mqtt.clone();
    let (ready, mut ready_rx) = forwarder::<serde_json::Value>();
    mqtt.subscribe("homelab/asker/warm", ready).await.unwrap();
    mqtt.subscribe(
        "homelab/asker/question",
        move |message: Message<serde_json::Value>| {
            let replier = replier.clone();
            async move {
                assert_eq!(message.trace_id.as_deref(), Some("abc-123"));
                replier.publish("answer", &json!({"answer": 42})).await?;
                Ok(())
            }
        },
    )
    .await
    .unwrap();
    until_subscribed(&probe, "homelab/asker/warm", &mut ready_rx).await;
    probe
        .publish_json(
            "homelab/asker/question",
            &json!({"q": "?", "trace_id": "abc-123"}),
        )
        .await;
    let answer = probe
        .wait_for("homelab/responder/answer", WAIT, |_| true)
        .await
        .expect("no answer");
    assert_eq!(answer["trace_id"], "abc-123");
    assert_eq!(answer["answer"], 42);
}

#[derive(Debug, Deserialize)]
struct Command {
    command: String,
}

#[tokio::test]
async fn bad_messages_go_to_the_dead_letter_topic_and_handling_goes_on() {
    let broker = Broker::start();
    let mut probe = Probe::connect(broker.port(), &["homelab/errors/worker"]).await;
    let mqtt = Mqtt::connect(&config(&broker, "worker"));
    let (handled_tx, mut handled) = mpsc::unbounded_channel::<String>();
    mqtt.subscribe("homelab/worker/in", move |message: Message<Command>| {
        let handled_tx = handled_tx.clone();
        async move {
            match message.payload.command.as_str() {
                "boom" => panic!("exploded on purpose"),
                "fail" => anyhow::bail!("cannot do {:?}", message.payload.command),
                other => {
                    let _ = handled_tx.send(other.to_string());
                    Ok(())
                }
            }
        }
    })
    .await
    .unwrap();
    for _ in 0..100 {
        probe
            .publish_json("homelab/worker/in", &json!({"command": "warm"}))
            .await;
        if tokio::time::timeout(Duration::from_millis(100), handled.recv())
            .await
            .is_ok()
        {
            break;
        }
    }
    while tokio::time::timeout(Duration::from_millis(150), handled.recv())
        .await
        .is_ok()
    {}

    let huge = format!("{{\"command\": \"{}", "x".repeat(100_000)); // unterminated: malformed
    probe
        .publish(
            "homelab/worker/in",
            "{not json",
            homelab::QoS::AtLeastOnce,
            false,
        )
        .await;
    probe
        .publish_json("homelab/worker/in", &json!({"command": "boom"}))
        .await;
    probe
        .publish_json("homelab/worker/in", &json!({"command": "fail"}))
        .await;
    probe
        .publish(
            "homelab/worker/in",
            huge.clone(),
            homelab::QoS::AtLeastOnce,
            false,
        )
        .await;
    probe
        .publish_json("homelab/worker/in", &json!({"command": "after"}))
        .await;

    let mut letters = Vec::new();
    while letters.len() < 4 {
        let message = probe.next(WAIT).await.expect("missing dead letters");
        let letter: DeadLetter = serde_json::from_slice(&message.payload).unwrap();
        letters.push(letter);
    }
    let kinds: Vec<_> = letters
        .iter()
        .map(|letter| letter.error_type.as_str())
        .collect();
    assert_eq!(
        kinds,
        [
            "parse_error",
            "handler_panic",
            "handler_error",
            "parse_error"
        ]
    );
    assert_eq!(letters[0].original_topic, "homelab/worker/in");
    assert_eq!(letters[0].payload, "{not json");
    assert!(letters[0].error.contains("Command"), "{}", letters[0].error);
    assert!(
        letters[1].error.contains("exploded on purpose"),
        "{}",
        letters[1].error
    );
    assert!(
        letters[2].error.contains("cannot do \"fail\""),
        "{}",
        letters[2].error
    );
    assert_eq!(letters[3].payload.len(), 64 * 1024);
    assert_eq!(letters[3].payload_bytes, huge.len());
    assert!(letters
        .iter()
        .all(|letter| letter.service == "worker" && !letter.timestamp.is_empty()));

    let after = tokio::time::timeout(WAIT, handled.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after, "after", "the service must keep handling messages");
    assert_eq!(mqtt.metrics().dead_letters(), 4);
    assert_eq!(mqtt.metrics().handler_errors(), 2);
}

#[tokio::test]
async fn a_slow_handler_does_not_hold_up_other_subscriptions() {
    let broker = Broker::start();
    let probe = Probe::connect(broker.port(), &[]).await;
    let mqtt = Mqtt::connect(&config(&broker, "busy"));
    let release = Arc::new(Notify::new());
    let (slow_done_tx, mut slow_done) = mpsc::unbounded_channel::<()>();
    let (slow_started_tx, mut slow_started) = mpsc::unbounded_channel::<()>();
    let gate = release.clone();
    mqtt.subscribe("homelab/busy/slow", move |_: Message<serde_json::Value>| {
        let gate = gate.clone();
        let started = slow_started_tx.clone();
        let done = slow_done_tx.clone();
        async move {
            let _ = started.send(());
            gate.notified().await; // blocked until the fast message got through
            let _ = done.send(());
            Ok(())
        }
    })
    .await
    .unwrap();
    let (fast, mut fast_rx) = forwarder::<Reading>();
    mqtt.subscribe("homelab/busy/fast", fast).await.unwrap();
    until_subscribed(&probe, "homelab/busy/fast", &mut fast_rx).await;

    probe.publish_json("homelab/busy/slow", &json!({})).await;
    tokio::time::timeout(WAIT, slow_started.recv())
        .await
        .expect("slow handler never ran");
    probe
        .publish_json("homelab/busy/fast", &json!({"value": 7}))
        .await;
    let fast_message = tokio::time::timeout(WAIT, fast_rx.recv())
        .await
        .expect("the fast subscription was stalled by the slow handler")
        .unwrap();
    assert_eq!(fast_message.payload.value, 7.0);
    assert!(
        slow_done.try_recv().is_err(),
        "the slow handler is still blocked at this point"
    );
    release.notify_one();
    tokio::time::timeout(WAIT, slow_done.recv())
        .await
        .expect("slow handler finished");
}

fn ids(received: &[Message<serde_json::Value>]) -> BTreeSet<u64> {
    received
        .iter()
        .filter_map(|message| message.payload["n"].as_u64())
        .collect()
}

#[tokio::test]
async fn an_oversized_message_is_dead_lettered_once_and_the_connection_stays() {
    // testkit's broker sets no max_packet_size, like a broker the user brings (HA's
    // add-on): a message over the limit reaches the client, which must acknowledge and
    // record it. Refusing it would drop the connection, and the persistent session would
    // hand it back on every reconnect.
    let broker = Broker::start();
    let mut probe = Probe::connect(broker.port(), &["homelab/errors/worker"]).await;
    let mqtt = Mqtt::connect(&config(&broker, "worker"));
    let (handler, mut handled) = forwarder::<serde_json::Value>();
    mqtt.subscribe("homelab/worker/in", handler).await.unwrap();
    until_subscribed(&probe, "homelab/worker/in", &mut handled).await;

    let oversized = format!(
        "{{\"command\": \"{}\"}}",
        "x".repeat(homelab::mqtt::MAX_MESSAGE_BYTES + 1024)
    );
    probe
        .publish(
            "homelab/worker/in",
            oversized.clone(),
            homelab::QoS::AtLeastOnce,
            false,
        )
        .await;
    probe
        .publish_json("homelab/worker/in", &json!({"command": "after"}))
        .await;

    let message = probe.next(WAIT).await.expect("no dead letter");
    let letter: DeadLetter = serde_json::from_slice(&message.payload).unwrap();
    assert_eq!(letter.error_type, "too_large");
    assert_eq!(letter.original_topic, "homelab/worker/in");
    assert_eq!(letter.payload_bytes, oversized.len());
    assert!(letter.payload.is_empty(), "no body in the record");
    assert!(letter.error.contains("1048576"), "{}", letter.error);
    let after = tokio::time::timeout(WAIT, handled.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after.payload["command"], "after");
    assert_eq!(mqtt.metrics().reconnects(), 0, "the connection must stay");

    // Acknowledged: the same persistent session, connected again, does not get it back.
    mqtt.disconnect(Duration::from_secs(5)).await;
    let again = Mqtt::connect(&config(&broker, "worker"));
    let (handler, mut handled_again) = forwarder::<serde_json::Value>();
    again.subscribe("homelab/worker/in", handler).await.unwrap();
    assert!(again.wait_connected(WAIT).await);
    assert!(
        probe.next(Duration::from_secs(2)).await.is_none(),
        "the oversized message came back after a reconnect"
    );
    assert!(
        tokio::time::timeout(Duration::from_millis(500), handled_again.recv())
            .await
            .is_err()
    );
}

/// What a service does at a stop: its retained offline heartbeat, then DISCONNECT.
async fn leave_cleanly(mqtt: &Mqtt, service: &str, round: u32) {
    mqtt.publish_raw(
        &format!("homelab/{service}/heartbeat"),
        format!("{{\"status\":\"offline\",\"round\":{round}}}"),
        homelab::QoS::AtLeastOnce,
        true,
    )
    .await
    .unwrap();
    mqtt.disconnect(Duration::from_secs(2)).await;
}

/// The heartbeats among `seen` that are a last will, not a clean stop.
fn fired_wills(seen: &[Received]) -> Vec<&Received> {
    seen.iter()
        .filter(|message| message.json()["reason"] == "connection_lost")
        .collect()
}

#[tokio::test]
async fn a_clean_disconnect_right_after_a_publish_never_fires_the_will() {
    // mosquitto treats a DISCONNECT that arrives before it could PUBACK our last QoS 1
    // publish as a lost connection and publishes the will over it: a service that said
    // "offline: shutdown" then showed "connection_lost" (seen in run-local's Ctrl-C).
    let broker = Broker::start();
    let mut watcher = Probe::connect(broker.port(), &["homelab/leaver/heartbeat"]).await;
    for round in 0..40 {
        let mqtt = Mqtt::connect(&config(&broker, "leaver"));
        assert!(mqtt.wait_connected(WAIT).await);
        // Busy to the end, as a service is: the broker still owes PUBACKs at DISCONNECT.
        for n in 0..50 {
            mqtt.publish_raw(
                "homelab/leaver/status",
                format!("{{\"n\":{n}}}"),
                homelab::QoS::AtLeastOnce,
                false,
            )
            .await
            .unwrap();
        }
        leave_cleanly(&mqtt, "leaver", round).await;
    }
    let seen = watcher.drain(Duration::from_secs(1)).await;
    let wills = fired_wills(&seen);
    assert!(
        wills.is_empty(),
        "{} of 40 clean disconnects fired the will; broker: {}",
        wills.len(),
        broker
            .log()
            .lines()
            .filter(|line| line.contains("leaver") && line.contains("disconnected"))
            .take(3)
            .collect::<Vec<_>>()
            .join(" | ")
    );
    assert_eq!(seen.len(), 40, "every round's message arrives");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_disconnect_while_messages_still_arrive_never_fires_the_will() {
    // A socket closed with unread incoming data is reset (RST), and a broker that had
    // not yet read our DISCONNECT then publishes the will: health-monitor, which gets
    // every service's offline heartbeat at the moment they all stop, showed
    // "connection_lost" after `docker compose stop` (seen in the container test).
    let broker = Broker::start();
    let mut watcher = Probe::connect(broker.port(), &["homelab/listener/heartbeat"]).await;
    let flood = Probe::connect(broker.port(), &[]).await;
    let flooding = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let running = flooding.clone();
    let flooder = tokio::spawn(async move {
        let mut n = 0_u64;
        while running.load(std::sync::atomic::Ordering::Relaxed) {
            n += 1;
            flood
                .publish(
                    "homelab/flood/x",
                    format!("{{\"n\":{n},\"pad\":\"{}\"}}", "x".repeat(2000)),
                    homelab::QoS::AtMostOnce,
                    false,
                )
                .await;
            if n % 20 == 0 {
                tokio::task::yield_now().await;
            }
        }
    });
    for round in 0..40 {
        let mqtt = Mqtt::connect(&config(&broker, "listener"));
        let (handler, _handled) = forwarder::<serde_json::Value>();
        mqtt.subscribe("homelab/flood/#", handler).await.unwrap();
        assert!(mqtt.wait_connected(WAIT).await);
        tokio::time::sleep(Duration::from_millis(50)).await;
        leave_cleanly(&mqtt, "listener", round).await;
    }
    flooding.store(false, std::sync::atomic::Ordering::Relaxed);
    flooder.await.unwrap();
    let seen = watcher.drain(Duration::from_secs(1)).await;
    let wills = fired_wills(&seen).len();
    assert_eq!(wills, 0, "{wills} of 40 clean disconnects fired the will");
}

#[tokio::test]
async fn after_a_long_broker_outage_the_service_is_back_within_seconds() {
    // With the old 30 s backoff cap a service came back ~22 s after a 40 s outage ended.
    let mut broker = Broker::start();
    let mqtt = Mqtt::connect(&config(&broker, "patient"));
    assert!(mqtt.wait_connected(WAIT).await);
    broker.stop();
    tokio::time::sleep(Duration::from_secs(20)).await;
    assert!(!mqtt.is_connected());
    broker.start_again();
    let back = std::time::Instant::now();
    assert!(
        mqtt.wait_connected(Duration::from_secs(30)).await,
        "never reconnected"
    );
    let took = back.elapsed();
    eprintln!(
        "reconnected {:.1} s after the broker was back",
        took.as_secs_f64()
    );
    assert!(
        took <= Duration::from_secs(6), // at most 5 s between attempts, plus the connect
        "reconnected only {took:?} after the broker was back"
    );
}

#[tokio::test]
async fn no_qos1_message_is_lost_across_a_broker_restart() {
    let mut broker = Broker::start();
    let mqtt = Mqtt::connect(&config(&broker, "survivor"));
    let (handler, mut received) = forwarder::<serde_json::Value>();
    mqtt.subscribe("homelab/sensor/#", handler).await.unwrap();
    {
        let probe = Probe::connect(broker.port(), &[]).await;
        for _ in 0..100 {
            probe
                .publish_json("homelab/sensor/warm", &json!({"warm_up": true}))
                .await;
            if tokio::time::timeout(Duration::from_millis(100), received.recv())
                .await
                .is_ok()
            {
                break;
            }
        }
    }
    while tokio::time::timeout(Duration::from_millis(200), received.recv())
        .await
        .is_ok()
    {}

    broker.stop();
    for _ in 0..100 {
        if !mqtt.is_connected() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        !mqtt.is_connected(),
        "the client should notice the broker is gone"
    );
    // Let the client's backoff grow so that the messages below are published while it is away.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    broker.start_again();

    let probe = Probe::connect(broker.port(), &[]).await;
    for n in 0..50u64 {
        probe
            .publish_json(&format!("homelab/sensor/{}", n % 5), &json!({"n": n}))
            .await;
    }
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while ids(&got).len() < 50 && tokio::time::Instant::now() < deadline {
        if let Ok(Some(message)) =
            tokio::time::timeout(Duration::from_millis(500), received.recv()).await
        {
            got.push(message);
        }
    }
    let missing: Vec<u64> = (0..50).filter(|n| !ids(&got).contains(n)).collect();
    assert!(
        missing.is_empty(),
        "lost QoS 1 messages {missing:?}\n{}",
        broker.log()
    );
    assert!(mqtt.is_connected());
    assert!(mqtt.metrics().reconnects() >= 1);
}

#[tokio::test]
async fn subscriptions_are_restored_when_the_broker_forgot_the_session() {
    let mut broker = Broker::start();
    let mqtt = Mqtt::connect(&config(&broker, "forgotten"));
    let (handler, mut received) = forwarder::<serde_json::Value>();
    mqtt.subscribe("homelab/+/event", handler).await.unwrap();
    assert!(mqtt.wait_connected(WAIT).await);

    broker.crash_and_lose_sessions();
    // Wait for the drop to be noticed and the reconnect to complete.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while mqtt.metrics().reconnects() == 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(mqtt.metrics().reconnects(), 1, "{}", broker.log());

    let probe = Probe::connect(broker.port(), &[]).await;
    let mut arrived = false;
    for _ in 0..50 {
        probe
            .publish_json("homelab/any/event", &json!({"n": 1}))
            .await;
        if tokio::time::timeout(Duration::from_millis(200), received.recv())
            .await
            .is_ok()
        {
            arrived = true;
            break;
        }
    }
    assert!(
        arrived,
        "the subscription was not restored:\n{}",
        broker.log()
    );
}

#[tokio::test]
async fn a_flood_for_a_stuck_handler_is_capped_and_the_service_stays_connected() {
    use homelab::mqtt::SUBSCRIPTION_BACKLOG;
    use rumqttc::QoS;
    let broker = Broker::start();
    let probe = Probe::connect(broker.port(), &[]).await;
    let mqtt = Mqtt::connect(&config(&broker, "flooded"));
    let release = Arc::new(Notify::new());
    let (handled_tx, mut handled) = mpsc::unbounded_channel::<()>();
    let gate = release.clone();
    mqtt.subscribe(
        "homelab/flooded/in",
        move |_: Message<serde_json::Value>| {
            let gate = gate.clone();
            let handled = handled_tx.clone();
            async move {
                gate.notified().await; // stuck until the test lets it go
                let _ = handled.send(());
                Ok(())
            }
        },
    )
    .await
    .unwrap();
    let (marker, mut marker_rx) = forwarder::<Reading>();
    mqtt.subscribe("homelab/flooded/marker", marker)
        .await
        .unwrap();
    until_subscribed(&probe, "homelab/flooded/marker", &mut marker_rx).await;

    let flood = SUBSCRIPTION_BACKLOG + 200;
    for n in 0..flood {
        probe
            .publish(
                "homelab/flooded/in",
                format!("{{\"n\":{n}}}"),
                QoS::AtMostOnce,
                false,
            )
            .await;
    }
    let deadline = tokio::time::Instant::now() + WAIT;
    while mqtt.metrics().messages_in() < flood as u64 + 1 && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // One message is in the stuck handler, the queue holds its limit, the rest is counted.
    assert_eq!(mqtt.metrics().backlog(), SUBSCRIPTION_BACKLOG as u64);
    assert_eq!(mqtt.metrics().backlog_overflows(), 199);
    // The connection and the other subscriptions go on.
    probe
        .publish_json("homelab/flooded/marker", &json!({"value": 3}))
        .await;
    let through = tokio::time::timeout(WAIT, marker_rx.recv())
        .await
        .expect("another subscription stalled by the flood")
        .unwrap();
    assert_eq!(through.payload.value, 3.0);
    assert_eq!(mqtt.metrics().reconnects(), 0);

    let mut count = 0;
    while count < SUBSCRIPTION_BACKLOG + 1 {
        release.notify_one();
        tokio::time::timeout(WAIT, handled.recv())
            .await
            .expect("the queued messages are handled once the handler is free");
        count += 1;
    }
    assert_eq!(mqtt.metrics().backlog(), 0);
}
