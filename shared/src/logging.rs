//! `tracing` set-up: level from `LOG_LEVEL`, `pretty` or `json` lines on stderr,
//! and the service name on every line (a container's logs are read side by side).

use crate::settings::{LogFormat, SettingsError};
use crate::telemetry::TelemetryGuard;
use std::fmt;
use std::io::IsTerminal;
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

/// Translates the Python system's level names (`WARNING`, `CRITICAL`) and any
/// `EnvFilter` directive into a filter, or says which value was wrong.
pub fn filter_for(level: &str) -> Result<EnvFilter, SettingsError> {
    let normalised = match level.trim().to_ascii_lowercase().as_str() {
        "warning" => "warn".to_string(),
        "critical" | "fatal" => "error".to_string(),
        other => other.to_string(),
    };
    let invalid = || SettingsError::Invalid {
        variable: "LOG_LEVEL".into(),
        value: level.into(),
        expected: "expected one of trace, debug, info, warn, error (or a tracing filter directive)"
            .into(),
    };
    const LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];
    // A bare word is a level; anything else must look like a directive (`target=level,...`),
    // or a typo such as `LOG_LEVEL=loud` would silently become a target filter.
    let is_directive = normalised.contains('=') || normalised.contains(',');
    if normalised.is_empty() || (!is_directive && !LEVELS.contains(&normalised.as_str())) {
        return Err(invalid());
    }
    EnvFilter::try_new(with_capped_libraries(&normalised)).map_err(|_| invalid())
}

/// Libraries that print whole frames or headers at debug and trace: tungstenite logs
/// Home Assistant's auth frame with the token, hyper and h2 the Authorization header.
/// They stay at warn unless `LOG_LEVEL` names them itself.
const CAPPED_LIBRARIES: [&str; 10] = [
    "tungstenite",
    "tokio_tungstenite",
    "hyper",
    "hyper_util",
    "h2",
    "reqwest",
    "rustls",
    "tonic",
    "tower",
    "rumqttc",
];

fn with_capped_libraries(directive: &str) -> String {
    if directive == "off" {
        return directive.to_string();
    }
    let named = |library: &str| {
        directive.split(',').any(|part| {
            part.split('=').next().is_some_and(|target| {
                target.trim() == library || target.trim().starts_with(&format!("{library}::"))
            })
        })
    };
    let mut filter = directive.to_string();
    for library in CAPPED_LIBRARIES {
        if !named(library) {
            filter.push_str(&format!(",{library}=warn"));
        }
    }
    filter
}

/// Installs the global subscriber: `LOG_LEVEL` filter, `pretty`/`json` lines on
/// stderr and, when `otlp_endpoint` is given, span export over OTLP gRPC. Call once,
/// inside the tokio runtime; keep the guard until the runtime's work is done.
pub fn init(
    service: &'static str,
    level: &str,
    format: LogFormat,
    otlp_endpoint: Option<&str>,
) -> Result<Option<TelemetryGuard>, SettingsError> {
    let filter = filter_for(level)?;
    let lines: Box<dyn Layer<Registry> + Send + Sync> = match format {
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .event_format(WithService {
                service,
                json: true,
                inner: tracing_subscriber::fmt::format()
                    .json()
                    .flatten_event(true)
                    .with_current_span(false)
                    .with_span_list(false),
            })
            .boxed(),
        LogFormat::Pretty => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
            .event_format(WithService {
                service,
                json: false,
                inner: tracing_subscriber::fmt::format().compact(),
            })
            .boxed(),
    };
    let (traces, guard) = match otlp_endpoint.filter(|endpoint| !endpoint.trim().is_empty()) {
        Some(endpoint) => {
            let (layer, guard) = crate::telemetry::layer(service, endpoint).map_err(|reason| {
                SettingsError::Invalid {
                    variable: "OTEL_EXPORTER_OTLP_ENDPOINT".into(),
                    value: endpoint.into(),
                    expected: reason,
                }
            })?;
            (Some(layer), Some(guard))
        }
        None => (None, None),
    };
    // A second init (tests that run several services in one process) keeps the first.
    let _ = tracing_subscriber::registry()
        .with(lines)
        .with(traces)
        .with(filter)
        .try_init();
    Ok(guard)
}

/// Wraps a formatter so that each line carries `service`: a leading word in pretty
/// mode, a first field in JSON.
struct WithService<F> {
    service: &'static str,
    json: bool,
    inner: F,
}

impl<S, N, F> FormatEvent<S, N> for WithService<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        if !self.json {
            write!(writer, "{} ", self.service)?;
            return self.inner.format_event(ctx, writer, event);
        }
        let mut line = String::with_capacity(256);
        self.inner
            .format_event(ctx, Writer::new(&mut line), event)?;
        match line.strip_prefix('{') {
            Some(rest) => {
                let name = serde_json::to_string(self.service).map_err(|_| fmt::Error)?;
                write!(writer, "{{\"service\":{name},{rest}")
            }
            None => writer.write_str(&line),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_level_names_are_understood() {
        for level in ["INFO", "debug", "WARNING", "critical", "homelab=debug,info"] {
            assert!(filter_for(level).is_ok(), "{level}");
        }
    }

    #[test]
    fn chatty_libraries_stay_at_warn_unless_named() {
        let trace = with_capped_libraries("trace");
        assert!(trace.starts_with("trace,") && trace.contains(",tungstenite=warn"));
        let named = with_capped_libraries("trace,tungstenite=trace");
        assert!(!named.contains(",tungstenite=warn"), "{named}");
        assert!(named.contains("tokio_tungstenite=warn"), "{named}");
        assert_eq!(with_capped_libraries("off"), "off");
    }

    #[test]
    fn a_bad_level_names_log_level() {
        let error = filter_for("loud").unwrap_err().to_string();
        assert!(error.contains("LOG_LEVEL=\"loud\""), "{error}");
    }
}
