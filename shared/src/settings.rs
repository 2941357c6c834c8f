//! Settings from the environment and a `.env` file, with the Python system's names.
//!
//! One `.env` serves every service: unknown variables are ignored, and the process
//! environment wins over the file. Values are read with the `config` crate, so a
//! service's own settings struct is plain serde with defaults.

use crate::secret::Secret;
use config::{Config, ConfigError, Environment};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// The settings every service shares.
#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct CommonSettings {
    pub mqtt_host: String,
    pub mqtt_port: u16,
    pub mqtt_username: String,
    pub mqtt_password: Secret,
    /// Empty means the service name. It must be stable across restarts: the broker
    /// keeps the persistent session (and queued QoS 1 messages) under this id.
    pub mqtt_client_id: String,
    pub ha_url: String,
    pub ha_token: Secret,
    pub influxdb_url: String,
    pub influxdb_token: Secret,
    pub influxdb_org: String,
    pub influxdb_bucket: String,
    pub log_level: String,
    pub log_format: LogFormat,
    pub timezone: String,
    /// 0 turns the periodic heartbeat off (the last will and the shutdown `offline` stay).
    pub heartbeat_interval_seconds: u64,
    pub safe_mode_entity: String,
    pub data_dir: PathBuf,
    pub healthcheck_max_age_seconds: u64,
    /// Port of /healthz, /readyz and /metrics; 0 (the default) serves nothing.
    pub http_port: u16,
    /// OTLP gRPC endpoint for traces, e.g. `http://jaeger:4317`; empty = no export.
    pub otel_exporter_otlp_endpoint: String,
}

impl Default for CommonSettings {
    fn default() -> Self {
        Self {
            mqtt_host: "mqtt".into(),
            mqtt_port: 1883,
            mqtt_username: String::new(),
            mqtt_password: Secret::default(),
            mqtt_client_id: String::new(),
            ha_url: "http://homeassistant.local:8123".into(),
            ha_token: Secret::default(),
            influxdb_url: String::new(),
            influxdb_token: Secret::default(),
            influxdb_org: String::new(),
            influxdb_bucket: "hass".into(),
            log_level: "info".into(),
            log_format: LogFormat::Pretty,
            timezone: "Europe/Berlin".into(),
            heartbeat_interval_seconds: 60,
            safe_mode_entity: "input_boolean.homelab_safe_mode".into(),
            data_dir: PathBuf::from("/app/data"),
            healthcheck_max_age_seconds: 300,
            http_port: 0,
            otel_exporter_otlp_endpoint: String::new(),
        }
    }
}

impl CommonSettings {
    /// `TIMEZONE` as a zone, or an error naming the variable.
    pub fn time_zone(&self) -> anyhow::Result<chrono_tz::Tz> {
        self.timezone
            .parse()
            .map_err(|_| anyhow::anyhow!("TIMEZONE={:?} is not an IANA time zone", self.timezone))
    }

    /// A one-line summary for diagnose and the start-up log; secrets say only set/not set.
    pub fn summary(&self) -> String {
        format!(
            "mqtt={}:{} mqtt_user={} mqtt_password={} ha_url={} ha_token={} influxdb={} data_dir={} heartbeat={}s log={}/{}",
            self.mqtt_host,
            self.mqtt_port,
            if self.mqtt_username.is_empty() { "-" } else { &self.mqtt_username },
            self.mqtt_password.describe(),
            crate::secret::redact_url(&self.ha_url),
            self.ha_token.describe(),
            if self.influxdb_url.is_empty() { "not configured".to_string() } else { crate::secret::redact_url(&self.influxdb_url) },
            self.data_dir.display(),
            self.heartbeat_interval_seconds,
            self.log_level,
            self.log_format,
        )
    }
}

/// `LOG_FORMAT`: `pretty` for a terminal, `json` for containers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum LogFormat {
    Pretty,
    Json,
}

impl TryFrom<String> for LogFormat {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        match value.trim().to_ascii_lowercase().as_str() {
            "pretty" | "text" | "console" => Ok(Self::Pretty),
            "json" => Ok(Self::Json),
            _ => Err("expected `pretty` or `json`".into()),
        }
    }
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Pretty => "pretty",
            Self::Json => "json",
        })
    }
}

/// The base settings plus one service's own.
#[derive(Clone, Debug)]
pub struct Settings<S> {
    pub common: CommonSettings,
    pub service: S,
}

/// Why settings could not be loaded. Displays as one line that names the variable.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("invalid setting {variable}={value:?}: {expected}")]
    Invalid {
        variable: String,
        value: String,
        expected: String,
    },
    #[error("cannot read {path}: {reason}")]
    EnvFile { path: PathBuf, reason: String },
    #[error("invalid settings: {0}")]
    Other(String),
}

/// Where the variables come from: the `.env` file first, the process environment on top.
#[derive(Clone, Debug, Default)]
pub struct SettingsSource {
    values: HashMap<String, String>,
}

impl SettingsSource {
    /// Reads `env_file` when it exists (a missing file is fine), then the process environment.
    pub fn from_env_and_file(env_file: &Path) -> Result<Self, SettingsError> {
        let mut source = Self::default();
        match dotenvy::from_path_iter(env_file) {
            Ok(lines) => {
                for line in lines {
                    let (key, value) = line.map_err(|error| SettingsError::EnvFile {
                        path: env_file.to_path_buf(),
                        reason: error.to_string(),
                    })?;
                    source.set(&key, value);
                }
            }
            Err(dotenvy::Error::Io(error)) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => {
                return Err(SettingsError::EnvFile {
                    path: env_file.to_path_buf(),
                    reason: error.to_string(),
                })
            }
        }
        for (key, value) in std::env::vars() {
            source.set(&key, value);
        }
        Ok(source)
    }

    /// A source from explicit pairs, for tests and tools.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let mut source = Self::default();
        for (key, value) in pairs {
            source.set(key, value.to_string());
        }
        source
    }

    fn set(&mut self, key: &str, value: String) {
        self.values.insert(key.to_ascii_lowercase(), value);
    }

    fn raw(&self, key: &str) -> Option<&str> {
        self.values
            .get(&key.to_ascii_lowercase())
            .map(String::as_str)
    }

    /// Deserializes the common and the service settings from the same variables.
    pub fn load<S: DeserializeOwned>(&self) -> Result<Settings<S>, SettingsError> {
        // Variables that are set but empty mean "use the default", as in the Python system.
        let config = Config::builder()
            .add_source(
                Environment::default()
                    .source(Some(self.values.clone()))
                    .ignore_empty(true),
            )
            .build()
            .map_err(|error| self.explain(&error))?;
        let common: CommonSettings = config
            .clone()
            .try_deserialize()
            .map_err(|error| self.explain(&error))?;
        let service: S = config
            .try_deserialize()
            .map_err(|error| self.explain(&error))?;
        Ok(Settings { common, service })
    }

    /// Turns a `config` error into one line with the variable, its value and what was expected.
    fn explain(&self, error: &ConfigError) -> SettingsError {
        let (key, expected) = match error {
            ConfigError::Type {
                key: Some(key),
                expected,
                ..
            } => (key.clone(), format!("expected {expected}")),
            ConfigError::At {
                key: Some(key),
                error,
                ..
            } => (key.clone(), inner_message(error)),
            other => return SettingsError::Other(other.to_string()),
        };
        let variable = key.to_ascii_uppercase();
        let value = self.raw(&key).unwrap_or_default().to_string();
        SettingsError::Invalid {
            variable,
            value,
            expected: expected.trim().to_string(),
        }
    }
}

fn inner_message(error: &ConfigError) -> String {
    match error {
        ConfigError::Type { expected, .. } => format!("expected {expected}"),
        ConfigError::Message(message) => message.clone(),
        ConfigError::At { error, .. } => inner_message(error),
        other => other.to_string(),
    }
}

/// Loads settings the way every service does: `.env` in the working directory plus the environment.
pub fn load<S: DeserializeOwned>() -> Result<Settings<S>, SettingsError> {
    SettingsSource::from_env_and_file(Path::new(".env"))?.load()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::num::NonZeroU64;

    #[derive(Debug, Deserialize)]
    #[serde(default)]
    struct Extra {
        example_interval_seconds: NonZeroU64,
    }

    impl Default for Extra {
        fn default() -> Self {
            Self {
                example_interval_seconds: NonZeroU64::new(30).unwrap(),
            }
        }
    }

    #[test]
    fn defaults_apply_when_nothing_is_set() {
        let settings = SettingsSource::default().load::<Extra>().unwrap();
        assert_eq!(settings.common.mqtt_port, 1883);
        assert_eq!(settings.common.data_dir, PathBuf::from("/app/data"));
        assert_eq!(settings.common.heartbeat_interval_seconds, 60);
        assert_eq!(settings.service.example_interval_seconds.get(), 30);
    }

    #[test]
    fn values_are_read_case_insensitively_and_unknown_ones_ignored() {
        let source = SettingsSource::from_pairs([
            ("MQTT_HOST", "broker.lan"),
            ("MQTT_PORT", "1884"),
            ("EXAMPLE_INTERVAL_SECONDS", "5"),
            ("SOME_OTHER_SERVICE_SETTING", "whatever"),
            ("LOG_FORMAT", "JSON"),
            ("HA_TOKEN", ""),
        ]);
        let settings = source.load::<Extra>().unwrap();
        assert_eq!(settings.common.mqtt_host, "broker.lan");
        assert_eq!(settings.common.mqtt_port, 1884);
        assert_eq!(settings.common.log_format, LogFormat::Json);
        assert!(settings.common.ha_token.is_empty());
        assert_eq!(settings.service.example_interval_seconds.get(), 5);
    }

    #[test]
    fn a_bad_port_names_the_variable_the_value_and_the_expectation() {
        let error = SettingsSource::from_pairs([("MQTT_PORT", "abc")])
            .load::<Extra>()
            .unwrap_err()
            .to_string();
        assert!(error.contains("MQTT_PORT"), "{error}");
        assert!(error.contains("\"abc\""), "{error}");
        assert!(error.contains("expected an integer"), "{error}");
        assert!(!error.contains('\n'));
    }

    #[test]
    fn a_bad_service_setting_and_a_bad_enum_are_named_too() {
        let error = SettingsSource::from_pairs([("EXAMPLE_INTERVAL_SECONDS", "0")])
            .load::<Extra>()
            .unwrap_err()
            .to_string();
        assert!(error.contains("EXAMPLE_INTERVAL_SECONDS=\"0\""), "{error}");
        assert!(error.contains("nonzero"), "{error}");

        let error = SettingsSource::from_pairs([("LOG_FORMAT", "xml")])
            .load::<Extra>()
            .unwrap_err()
            .to_string();
        assert!(error.contains("LOG_FORMAT=\"xml\""), "{error}");
        assert!(error.contains("pretty"), "{error}");
    }

    #[test]
    fn an_out_of_range_port_is_refused() {
        let error = SettingsSource::from_pairs([("MQTT_PORT", "70000")])
            .load::<Extra>()
            .unwrap_err()
            .to_string();
        assert!(error.contains("MQTT_PORT=\"70000\""), "{error}");
    }

    #[test]
    fn the_env_file_is_read_and_the_environment_wins() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".env");
        std::fs::write(
            &path,
            "# comment\nMQTT_HOST=from-file\nHOMELAB_TEST_ONLY_IN_FILE=\"quoted value\"\n",
        )
        .unwrap();
        let mut source = SettingsSource::from_env_and_file(&path).unwrap();
        assert_eq!(source.raw("MQTT_HOST"), Some("from-file"));
        assert_eq!(
            source.raw("HOMELAB_TEST_ONLY_IN_FILE"),
            Some("quoted value")
        );
        // The process environment is layered on top in from_env_and_file; emulate it here
        // without mutating the test process's environment.
        source.set("MQTT_HOST", "from-env".into());
        assert_eq!(source.load::<Extra>().unwrap().common.mqtt_host, "from-env");
    }

    #[test]
    fn a_missing_env_file_is_fine_and_a_broken_one_is_named() {
        let dir = tempfile::tempdir().unwrap();
        assert!(SettingsSource::from_env_and_file(&dir.path().join("absent")).is_ok());
        let path = dir.path().join(".env");
        std::fs::write(&path, "GOOD=1\nthis line is not an assignment\n").unwrap();
        let error = SettingsSource::from_env_and_file(&path)
            .unwrap_err()
            .to_string();
        assert!(error.contains(".env"), "{error}");
    }

    #[test]
    fn debug_output_of_settings_hides_secrets() {
        let settings = SettingsSource::from_pairs([
            ("MQTT_PASSWORD", "pw-123456"),
            ("HA_TOKEN", "tok-abcdef"),
        ])
        .load::<Extra>()
        .unwrap();
        let shown = format!("{settings:?} {}", settings.common.summary());
        assert!(!shown.contains("pw-123456"), "{shown}");
        assert!(!shown.contains("tok-abcdef"), "{shown}");
    }
}

/// The environment variables a settings struct reads, upper-case, in field order.
///
/// Asks serde itself: a derived `Deserialize` hands its field names to
/// `deserialize_struct`, which this deserializer records and then declines.
pub fn variable_names<S: DeserializeOwned>() -> Vec<String> {
    let mut names = Vec::new();
    let _ = S::deserialize(FieldNames(&mut names));
    names.iter().map(|name| name.to_ascii_uppercase()).collect()
}

struct FieldNames<'a>(&'a mut Vec<&'static str>);

#[derive(Debug)]
struct Declined;

impl fmt::Display for Declined {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("field names recorded")
    }
}

impl std::error::Error for Declined {}

impl serde::de::Error for Declined {
    fn custom<T: fmt::Display>(_: T) -> Self {
        Declined
    }
}

impl<'de> serde::Deserializer<'de> for FieldNames<'_> {
    type Error = Declined;

    fn deserialize_any<V: serde::de::Visitor<'de>>(self, _: V) -> Result<V::Value, Declined> {
        Err(Declined)
    }

    fn deserialize_struct<V: serde::de::Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Declined> {
        self.0.extend_from_slice(fields);
        Err(Declined)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

#[cfg(test)]
mod names_tests {
    use super::*;

    #[derive(Deserialize)]
    #[allow(dead_code)]
    #[serde(default)]
    #[derive(Default)]
    struct Own {
        garage_poll_seconds: u64,
        garage_entity: String,
    }

    #[test]
    fn variable_names_come_from_the_struct_fields() {
        assert_eq!(
            variable_names::<Own>(),
            ["GARAGE_POLL_SECONDS", "GARAGE_ENTITY"]
        );
        let common = variable_names::<CommonSettings>();
        assert!(common.contains(&"MQTT_PORT".to_string()));
        assert!(common.contains(&"HEALTHCHECK_MAX_AGE_SECONDS".to_string()));
        assert_eq!(common.len(), 20);
    }
}
