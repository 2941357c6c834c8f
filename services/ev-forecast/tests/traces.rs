//! One trace across two processes over the real mosquitto, exported over OTLP gRPC to a
//! loopback receiver built from opentelemetry-proto's tonic server (no Jaeger here).
//! The test process plays the service that starts the trace; ev-forecast continues
//! it in the handler of the ping it receives.

use homelab::mqtt::{Mqtt, MqttConfig, QoS};
use homelab::settings::LogFormat;
use homelab::testkit::{free_port, Broker, Probe, ServiceProcess};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use serde_json::json;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tracing::Instrument;

#[derive(Clone, Debug)]
struct ExportedSpan {
    service: String,
    name: String,
    trace_id: String,
    parent_span_id: String,
}

#[derive(Clone, Default)]
struct Receiver {
    spans: Arc<Mutex<Vec<ExportedSpan>>>,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut spans = self.spans.lock().unwrap();
        for resource_spans in request.into_inner().resource_spans {
            let service = resource_spans
                .resource
                .iter()
                .flat_map(|resource| resource.attributes.iter())
                .find(|attribute| attribute.key == "service.name")
                .and_then(
                    |attribute| match attribute.value.as_ref()?.value.as_ref()? {
                        AnyValue::StringValue(name) => Some(name.clone()),
                        _ => None,
                    },
                )
                .unwrap_or_default();
            for scope in resource_spans.scope_spans {
                for span in scope.spans {
                    spans.push(ExportedSpan {
                        service: service.clone(),
                        name: span.name.clone(),
                        trace_id: hex(&span.trace_id),
                        parent_span_id: hex(&span.parent_span_id),
                    });
                }
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trace_started_here_continues_in_ev_forecast() {
    let receiver = Receiver::default();
    let otlp_port = free_port();
    let server = TraceServiceServer::new(receiver.clone());
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(server)
            .serve(([127, 0, 0, 1], otlp_port).into()),
    );
    let endpoint = format!("http://127.0.0.1:{otlp_port}");

    let broker = Broker::start();
    let data = tempfile::tempdir().unwrap();
    let mut probe = Probe::connect(
        broker.port(),
        &["homelab/ev-forecast/heartbeat", "homelab/ev-forecast/pong"],
    )
    .await;
    let child = ServiceProcess::spawn(
        Command::new(env!("CARGO_BIN_EXE_ev-forecast"))
            .env_clear()
            .env("MQTT_HOST", "127.0.0.1")
            .env("MQTT_PORT", broker.port().to_string())
            .env("DATA_DIR", data.path())
            .env("HEARTBEAT_INTERVAL_SECONDS", "1")
            .env("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint)
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    probe
        .wait_for(
            "homelab/ev-forecast/heartbeat",
            Duration::from_secs(10),
            |beat| beat["status"] == "online",
        )
        .await
        .expect("ev-forecast did not come online");

    // This process is "trace-origin": its spans go to the same receiver.
    let guard = homelab::logging::init("trace-origin", "info", LogFormat::Pretty, Some(&endpoint))
        .unwrap()
        .expect("an exporter was configured");
    let mqtt = Mqtt::connect(&MqttConfig::probe(
        "trace-origin",
        &broker.settings(data.path()),
    ));
    assert!(mqtt.wait_connected(Duration::from_secs(10)).await);
    let decision = tracing::info_span!("origin_decision");
    let (traceparent, trace_id) = decision
        .in_scope(homelab::telemetry::traceparent_of_current_span)
        .expect("the span is exported, so it has a trace");
    mqtt.publish_json(
        "homelab/orchestrator/command/ev-forecast",
        &json!({"command": "ping", "request_id": "traced-1"}),
        QoS::AtLeastOnce,
        false,
    )
    .instrument(decision.clone())
    .await
    .unwrap();

    let pong = probe
        .wait_for(
            "homelab/ev-forecast/pong",
            Duration::from_secs(10),
            |pong| pong["request_id"] == "traced-1",
        )
        .await
        .expect("no pong");
    assert_eq!(
        pong["trace_id"],
        trace_id.as_str(),
        "the reply carries the same trace id"
    );
    assert!(
        pong["traceparent"]
            .as_str()
            .unwrap()
            .starts_with(&format!("00-{trace_id}-")),
        "{pong}"
    );

    drop(decision);
    tokio::task::spawn_blocking(move || drop(guard))
        .await
        .unwrap(); // flush our spans
    child.terminate();

    let origin_span_id = traceparent.split('-').nth(2).unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let spans = receiver.spans.lock().unwrap().clone();
        let origin = spans.iter().any(|s| {
            s.service == "trace-origin" && s.name == "origin_decision" && s.trace_id == trace_id
        });
        let continued = spans.iter().find(|s| {
            s.service == "ev-forecast"
                && s.name == "mqtt_message"
                && s.trace_id == trace_id
                && s.parent_span_id == origin_span_id
        });
        if origin && continued.is_some() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "trace {trace_id} not exported by both services: {spans:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
