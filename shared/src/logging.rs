//! `tracing` set-up: level from `LOG_LEVEL`, `pretty` or `json` lines on stderr,
//! and the service name on every line (a container's logs are read side by side).

use crate::settings::{LogFormat, SettingsError};
use std::fmt;
use std::io::IsTerminal;
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::EnvFilter;

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
    EnvFilter::try_new(&normalised).map_err(|_| invalid())
}

/// Installs the global subscriber. Call once, before anything logs.
pub fn init(service: &'static str, level: &str, format: LogFormat) -> Result<(), SettingsError> {
    let filter = filter_for(level)?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second init (tests that run several services in one process) keeps the first.
    let _ = match format {
        LogFormat::Json => builder
            .event_format(WithService {
                service,
                json: true,
                inner: tracing_subscriber::fmt::format()
                    .json()
                    .flatten_event(true)
                    .with_current_span(false)
                    .with_span_list(false),
            })
            .try_init(),
        LogFormat::Pretty => builder
            .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
            .event_format(WithService {
                service,
                json: false,
                inner: tracing_subscriber::fmt::format().compact(),
            })
            .try_init(),
    };
    Ok(())
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
    fn a_bad_level_names_log_level() {
        let error = filter_for("loud").unwrap_err().to_string();
        assert!(error.contains("LOG_LEVEL=\"loud\""), "{error}");
    }
}
