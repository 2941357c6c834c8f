//! Traces over OTLP gRPC when `OTEL_EXPORTER_OTLP_ENDPOINT` is set (e.g.
//! `http://jaeger:4317`); unset means no exporter and no cost.
//!
//! Trace context crosses MQTT in the envelope as W3C `traceparent` (plus `trace_id`):
//! [`traceparent_of_current_span`] writes it, [`remote_parent`] reads it back so that a
//! handler's span continues the sender's trace — one decision across three services is
//! one trace in Jaeger.
//!
//! The exporter is tonic (gRPC), built inside the tokio runtime, and flushed by
//! [`TelemetryGuard`] after the runtime's `block_on` has returned while its workers
//! still run: the batch processor never needs a reactor of its own (STYLE.md's trap).

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// Flushes and shuts the exporter down when dropped.
pub struct TelemetryGuard {
    provider: SdkTracerProvider,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Err(error) = self.provider.shutdown() {
            eprintln!("otlp_shutdown_failed: {error}");
        }
    }
}

/// The tracer provider for `service`, exporting to `endpoint`. Call inside the runtime.
pub fn provider(service: &'static str, endpoint: &str) -> Result<SdkTracerProvider, String> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .build()
        .map_err(|error| format!("OTEL_EXPORTER_OTLP_ENDPOINT={endpoint:?}: {error}"))?;
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(Resource::builder().with_service_name(service).build())
        .build())
}

/// The `tracing` layer that turns spans into OTLP spans, and the guard that flushes them.
pub fn layer<S>(
    service: &'static str,
    endpoint: &str,
) -> Result<(impl tracing_subscriber::Layer<S>, TelemetryGuard), String>
where
    S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
{
    let provider = provider(service, endpoint)?;
    let tracer = provider.tracer(service);
    opentelemetry::global::set_tracer_provider(provider.clone());
    Ok((
        tracing_opentelemetry::layer().with_tracer(tracer),
        TelemetryGuard { provider },
    ))
}

/// `(traceparent, trace_id)` of the current span, when it belongs to an exported trace,
/// written by OpenTelemetry's W3C propagator.
pub fn traceparent_of_current_span() -> Option<(String, String)> {
    let context = tracing::Span::current().context();
    let trace_id = {
        let span = context.span();
        let span_context = span.span_context();
        if !span_context.is_valid() {
            return None;
        }
        span_context.trace_id().to_string()
    };
    let mut carrier = std::collections::HashMap::new();
    TraceContextPropagator::new().inject_context(&context, &mut carrier);
    Some((carrier.remove("traceparent")?, trace_id))
}

/// The remote parent described by a W3C `traceparent`, read by OpenTelemetry's
/// propagator; `None` when it is malformed.
pub fn remote_parent(traceparent: &str) -> Option<opentelemetry::Context> {
    let carrier =
        std::collections::HashMap::from([("traceparent".to_string(), traceparent.to_string())]);
    let context = TraceContextPropagator::new().extract(&carrier);
    let valid = context.span().span_context().is_valid();
    valid.then_some(context)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_is_parsed_strictly() {
        let parent =
            remote_parent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
        assert_eq!(
            parent.span().span_context().trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", // ff: invalid version
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-xyz-00f067aa0ba902b7-01",
        ] {
            assert!(remote_parent(bad).is_none(), "{bad}");
        }
        // W3C: a later version is read as far as version 00 goes.
        assert!(remote_parent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").is_some());
        assert!(
            traceparent_of_current_span().is_none(),
            "no exporter, no traceparent"
        );
    }
}
