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

use opentelemetry::trace::{
    SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState, TracerProvider as _,
};
use opentelemetry_otlp::WithExportConfig;
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

/// `(traceparent, trace_id)` of the current span, when it belongs to an exported trace.
pub fn traceparent_of_current_span() -> Option<(String, String)> {
    let context = tracing::Span::current().context();
    let span = context.span();
    let span_context = span.span_context();
    if !span_context.is_valid() {
        return None;
    }
    let trace_id = span_context.trace_id().to_string();
    let traceparent = format!(
        "00-{trace_id}-{}-{:02x}",
        span_context.span_id(),
        span_context.trace_flags().to_u8()
    );
    Some((traceparent, trace_id))
}

/// The remote parent described by a W3C `traceparent`; `None` when malformed.
pub fn remote_parent(traceparent: &str) -> Option<opentelemetry::Context> {
    let mut parts = traceparent.split('-');
    let (version, trace_id, span_id, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if version != "00" || parts.next().is_some() || trace_id.len() != 32 || span_id.len() != 16 {
        return None;
    }
    let span_context = SpanContext::new(
        TraceId::from_hex(trace_id).ok()?,
        SpanId::from_hex(span_id).ok()?,
        TraceFlags::new(u8::from_str_radix(flags, 16).ok()?),
        true,
        TraceState::default(),
    );
    span_context
        .is_valid()
        .then(|| opentelemetry::Context::new().with_remote_span_context(span_context))
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
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-xyz-00f067aa0ba902b7-01",
        ] {
            assert!(remote_parent(bad).is_none(), "{bad}");
        }
        assert!(
            traceparent_of_current_span().is_none(),
            "no exporter, no traceparent"
        );
    }
}
