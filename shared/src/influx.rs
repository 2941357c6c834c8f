//! InfluxDB v2: batched line-protocol writes and Flux queries returning typed rows.
//!
//! A thin reqwest client rather than the `influxdb2` crate: InfluxDB OSS ignores the
//! query API's `params` field (parameterized queries are Cloud-only), and that crate
//! would have us build Flux by formatting strings. Here a query's values are bound as a
//! Flux record `params = {...}` of literals that are escaped (strings) or strictly
//! formatted (numbers, times, checked durations) — never concatenated into the query —
//! and the query text refers to `params.name`.
//! Optional: with `INFLUXDB_URL` empty, `Influx::from_settings` gives `None`.

use crate::request_metrics::RequestMetrics;
use crate::secret::Secret;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Arc;
use std::time::Duration;

const BATCH_LINES: usize = 5000;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Every InfluxDB call fails with the shared transport error.
pub type InfluxError = crate::transport::TransportError;

const PEER: &str = "influxdb";

fn permanent(operation: &str, message: impl Into<String>) -> InfluxError {
    InfluxError::permanent(PEER, operation, message)
}

/// A field value of a point.
#[derive(Clone, Debug, PartialEq)]
pub enum FieldValue {
    Float(f64),
    Integer(i64),
    Boolean(bool),
    String(String),
}

/// One point of line protocol.
#[derive(Clone, Debug)]
pub struct Point {
    measurement: String,
    tags: BTreeMap<String, String>,
    fields: Vec<(String, FieldValue)>,
    time: Option<DateTime<Utc>>,
}

fn escape(text: &str, special: &[char]) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c == '\\' || special.contains(&c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

impl Point {
    pub fn new(measurement: &str) -> Self {
        Self {
            measurement: measurement.to_string(),
            tags: BTreeMap::new(),
            fields: Vec::new(),
            time: None,
        }
    }

    pub fn tag(mut self, key: &str, value: &str) -> Self {
        self.tags.insert(key.to_string(), value.to_string());
        self
    }

    pub fn field(mut self, key: &str, value: FieldValue) -> Self {
        self.fields.push((key.to_string(), value));
        self
    }

    pub fn float(self, key: &str, value: f64) -> Self {
        self.field(key, FieldValue::Float(value))
    }

    pub fn time(mut self, time: DateTime<Utc>) -> Self {
        self.time = Some(time);
        self
    }

    /// The point as one line of line protocol (nanosecond precision).
    pub fn to_line(&self) -> Result<String, InfluxError> {
        if self.fields.is_empty() {
            return Err(permanent(
                "write",
                format!("point {:?} has no fields", self.measurement),
            ));
        }
        let mut line = escape(&self.measurement, &[',', ' ']);
        for (key, value) in &self.tags {
            if !value.is_empty() {
                let _ = write!(
                    line,
                    ",{}={}",
                    escape(key, &[',', '=', ' ']),
                    escape(value, &[',', '=', ' '])
                );
            }
        }
        for (index, (key, value)) in self.fields.iter().enumerate() {
            line.push(if index == 0 { ' ' } else { ',' });
            line.push_str(&escape(key, &[',', '=', ' ']));
            line.push('=');
            match value {
                FieldValue::Float(v) if v.is_finite() => {
                    let _ = write!(line, "{v:?}");
                }
                FieldValue::Float(v) => {
                    return Err(permanent(
                        "write",
                        format!("field {key} is {v}, not finite"),
                    ))
                }
                FieldValue::Integer(v) => {
                    let _ = write!(line, "{v}i");
                }
                FieldValue::Boolean(v) => {
                    let _ = write!(line, "{v}");
                }
                FieldValue::String(v) => {
                    let _ = write!(line, "\"{}\"", escape(v, &['"']));
                }
            }
        }
        if let Some(time) = self.time {
            let nanos = time
                .timestamp_nanos_opt()
                .ok_or_else(|| permanent("write", "time out of range"))?;
            let _ = write!(line, " {nanos}");
        }
        Ok(line)
    }
}

/// A value bound into a Flux query.
#[derive(Clone, Debug)]
pub enum FluxParam {
    String(String),
    Integer(i64),
    Float(f64),
    Boolean(bool),
    Time(DateTime<Utc>),
    /// A Flux duration such as `-24h` or `1h30m`, checked strictly.
    Duration(String),
}

fn valid_duration(text: &str) -> bool {
    let body = text.strip_prefix('-').unwrap_or(text);
    if body.is_empty() {
        return false;
    }
    let mut rest = body;
    while !rest.is_empty() {
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if digits == 0 {
            return false;
        }
        rest = &rest[digits..];
        let unit = ["ns", "us", "µs", "ms", "mo", "s", "m", "h", "d", "w", "y"]
            .into_iter()
            .find(|unit| rest.starts_with(unit));
        let Some(unit) = unit else { return false };
        rest = &rest[unit.len()..];
    }
    true
}

fn flux_string(text: &str) -> String {
    let mut out = String::from("\"");
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '$' if chars.peek() == Some(&'{') => out.push_str("\\$"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

impl FluxParam {
    fn literal(&self, name: &str) -> Result<String, InfluxError> {
        Ok(match self {
            Self::String(text) => flux_string(text),
            Self::Integer(v) => v.to_string(),
            Self::Float(v) if v.is_finite() => format!("{v:?}"),
            Self::Float(v) => {
                return Err(permanent(
                    "query",
                    format!("parameter {name} is {v}, not finite"),
                ))
            }
            Self::Boolean(v) => v.to_string(),
            Self::Time(time) => time.to_rfc3339_opts(SecondsFormat::AutoSi, true),
            Self::Duration(text) if valid_duration(text) => text.clone(),
            Self::Duration(text) => {
                return Err(permanent(
                    "query",
                    format!("parameter {name} = {text:?} is not a Flux duration (e.g. -24h)"),
                ))
            }
        })
    }
}

/// A Flux query whose values are bound as `params.<name>`.
#[derive(Clone, Debug)]
pub struct FluxQuery {
    text: String,
    params: BTreeMap<String, FluxParam>,
}

impl FluxQuery {
    pub fn new(text: &str) -> Self {
        Self {
            text: text.to_string(),
            params: BTreeMap::new(),
        }
    }

    pub fn param(mut self, name: &str, value: FluxParam) -> Self {
        self.params.insert(name.to_string(), value);
        self
    }

    /// The Flux sent to the server: `params = {...}` then the query.
    pub fn render(&self) -> Result<String, InfluxError> {
        if self.params.is_empty() {
            return Ok(self.text.clone());
        }
        let mut record = Vec::new();
        for (name, value) in &self.params {
            if name.is_empty()
                || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                || name.starts_with(|c: char| c.is_ascii_digit())
            {
                return Err(permanent(
                    "query",
                    format!("{name:?} is not a valid parameter name"),
                ));
            }
            record.push(format!("{name}: {}", value.literal(name)?));
        }
        Ok(format!("params = {{{}}}\n{}", record.join(", "), self.text))
    }
}

/// One row of a Flux result, its values typed by the `#datatype` annotation.
pub type Row = Map<String, Value>;

/// Parses InfluxDB's annotated CSV (several tables, each with `#datatype`, `#group`,
/// `#default` lines and a header) into rows; `dateTime` stays an RFC 3339 string.
pub fn parse_annotated_csv(body: &str) -> Result<Vec<Row>, InfluxError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(body.as_bytes());
    let mut rows = Vec::new();
    let mut datatypes: Vec<String> = Vec::new();
    let mut defaults: Vec<String> = Vec::new();
    let mut header: Option<Vec<String>> = None;
    for record in reader.records() {
        let record = record.map_err(|e| permanent("query", format!("unreadable CSV: {e}")))?;
        let cells: Vec<&str> = record.iter().collect();
        if cells.iter().all(|cell| cell.is_empty()) {
            header = None; // a blank line ends a table
            continue;
        }
        match cells[0] {
            "#datatype" => {
                datatypes = cells.iter().map(|c| c.to_string()).collect();
                header = None;
                continue;
            }
            "#default" => {
                defaults = cells.iter().map(|c| c.to_string()).collect();
                continue;
            }
            c if c.starts_with('#') => continue,
            _ => {}
        }
        let Some(columns) = &header else {
            let names: Vec<String> = cells.iter().map(|c| c.to_string()).collect();
            if names.iter().any(|name| name == "error")
                && names.iter().any(|name| name == "reference")
            {
                // In-band error table: the next line carries the message.
                header = Some(names);
                continue;
            }
            header = Some(names);
            continue;
        };
        if columns.iter().any(|name| name == "error")
            && columns.iter().any(|name| name == "reference")
        {
            let at = columns.iter().position(|name| name == "error").unwrap_or(0);
            return Err(permanent(
                "query",
                cells.get(at).copied().unwrap_or("query failed").to_string(),
            ));
        }
        let mut row = Row::new();
        for (index, name) in columns.iter().enumerate().skip(1) {
            if name.is_empty() {
                continue;
            }
            let raw = match cells.get(index).copied().unwrap_or("") {
                "" => defaults.get(index).map(String::as_str).unwrap_or(""),
                cell => cell,
            };
            let kind = datatypes.get(index).map(String::as_str).unwrap_or("string");
            let value = typed(raw, kind)
                .map_err(|message| permanent("query", format!("column {name}: {message}")))?;
            row.insert(name.clone(), value);
        }
        rows.push(row);
    }
    Ok(rows)
}

fn typed(raw: &str, kind: &str) -> Result<Value, String> {
    if raw.is_empty() && kind != "string" {
        return Ok(Value::Null);
    }
    Ok(match kind {
        "double" => {
            serde_json::Number::from_f64(raw.parse::<f64>().map_err(|e| format!("{raw:?}: {e}"))?)
                .map(Value::Number)
                .unwrap_or(Value::Null)
        }
        "long" => Value::from(raw.parse::<i64>().map_err(|e| format!("{raw:?}: {e}"))?),
        "unsignedLong" => Value::from(raw.parse::<u64>().map_err(|e| format!("{raw:?}: {e}"))?),
        "boolean" => Value::Bool(raw == "true"),
        _ => Value::String(raw.to_string()), // string, dateTime:RFC3339, duration, base64Binary
    })
}

/// The client.
#[derive(Clone)]
pub struct Influx {
    url: String,
    token: Secret,
    org: String,
    bucket: String,
    http: reqwest::Client,
    metrics: Arc<RequestMetrics>,
}

impl std::fmt::Debug for Influx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Influx")
            .field("url", &self.url)
            .field("org", &self.org)
            .field("bucket", &self.bucket)
            .finish()
    }
}

impl Influx {
    pub fn new(url: &str, token: Secret, org: &str, bucket: &str) -> Self {
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(Duration::from_secs(5))
            .build()
            .expect("a reqwest client with these options always builds");
        Self {
            url: url.trim_end_matches('/').to_string(),
            token,
            org: org.to_string(),
            bucket: bucket.to_string(),
            http,
            metrics: Arc::default(),
        }
    }

    /// `None` when `INFLUXDB_URL` is empty: services then run without InfluxDB.
    pub fn from_settings(settings: &crate::CommonSettings) -> Option<Self> {
        (!settings.influxdb_url.trim().is_empty()).then(|| {
            Self::new(
                &settings.influxdb_url,
                settings.influxdb_token.clone(),
                &settings.influxdb_org,
                &settings.influxdb_bucket,
            )
        })
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    pub fn metrics(&self) -> &RequestMetrics {
        &self.metrics
    }

    async fn send(
        &self,
        operation: &'static str,
        request: reqwest::RequestBuilder,
    ) -> Result<String, InfluxError> {
        let started = std::time::Instant::now();
        let result = self.send_unmeasured(operation, request).await;
        self.metrics.record(started, result.is_ok());
        result
    }

    async fn send_unmeasured(
        &self,
        operation: &'static str,
        request: reqwest::RequestBuilder,
    ) -> Result<String, InfluxError> {
        let response = request
            .header("Authorization", format!("Token {}", self.token.expose()))
            .send()
            .await
            .map_err(|e| {
                InfluxError::from_reqwest(
                    PEER,
                    operation,
                    &e,
                    REQUEST_TIMEOUT,
                    "is InfluxDB running, is INFLUXDB_URL right?",
                )
            })?;
        let status = response.status().as_u16();
        let body = response
            .text()
            .await
            .map_err(|e| InfluxError::from_reqwest(PEER, operation, &e, REQUEST_TIMEOUT, ""))?;
        if (200..300).contains(&status) {
            return Ok(body);
        }
        let message = serde_json::from_str::<Value>(&body)
            .ok()
            .and_then(|v| v["message"].as_str().map(str::to_string))
            .unwrap_or_else(|| body.chars().take(200).collect());
        Err(InfluxError::from_status(
            PEER, operation, status, &message, "",
        ))
    }

    /// Writes points in batches of 5000 lines.
    pub async fn write(&self, points: &[Point]) -> Result<(), InfluxError> {
        let lines = points
            .iter()
            .map(Point::to_line)
            .collect::<Result<Vec<_>, _>>()?;
        for batch in lines.chunks(BATCH_LINES) {
            let request = self
                .http
                .post(format!("{}/api/v2/write", self.url))
                .query(&[
                    ("org", self.org.as_str()),
                    ("bucket", self.bucket.as_str()),
                    ("precision", "ns"),
                ])
                .header("Content-Type", "text/plain; charset=utf-8")
                .body(batch.join("\n"));
            self.send("write", request).await?;
        }
        Ok(())
    }

    /// Runs a Flux query and returns its rows.
    pub async fn query(&self, query: &FluxQuery) -> Result<Vec<Row>, InfluxError> {
        let body = serde_json::json!({
            "query": query.render()?,
            "type": "flux",
            "dialect": {"header": true, "annotations": ["datatype", "group", "default"], "delimiter": ",", "dateTimeFormat": "RFC3339"},
        });
        let request = self
            .http
            .post(format!("{}/api/v2/query", self.url))
            .query(&[("org", self.org.as_str())])
            .header("Accept", "application/csv")
            .json(&body);
        parse_annotated_csv(&self.send("query", request).await?)
    }

    /// Rows deserialized into `T` (column names as field names).
    pub async fn query_as<T: serde::de::DeserializeOwned>(
        &self,
        query: &FluxQuery,
    ) -> Result<Vec<T>, InfluxError> {
        self.query(query)
            .await?
            .into_iter()
            .map(|row| {
                serde_json::from_value(Value::Object(row))
                    .map_err(|e| permanent("query", format!("row does not fit: {e}")))
            })
            .collect()
    }

    /// `GET /health` status, e.g. `pass`.
    pub async fn health(&self) -> Result<String, InfluxError> {
        let body = self
            .send("health", self.http.get(format!("{}/health", self.url)))
            .await?;
        let value: Value =
            serde_json::from_str(&body).map_err(|e| permanent("health", e.to_string()))?;
        Ok(value["status"].as_str().unwrap_or("unknown").to_string())
    }

    /// Whether the configured bucket exists (and the token may see it).
    pub async fn bucket_exists(&self) -> Result<bool, InfluxError> {
        let request = self
            .http
            .get(format!("{}/api/v2/buckets", self.url))
            .query(&[("org", self.org.as_str()), ("name", self.bucket.as_str())]);
        let body = self.send("buckets", request).await?;
        let value: Value =
            serde_json::from_str(&body).map_err(|e| permanent("buckets", e.to_string()))?;
        Ok(value["buckets"]
            .as_array()
            .is_some_and(|buckets| buckets.iter().any(|b| b["name"] == self.bucket.as_str())))
    }
}

/// Diagnose step `influx`: WARN "not configured" when `INFLUXDB_URL` is empty.
pub fn diagnose_step(settings: &crate::CommonSettings) -> crate::diagnose::Step {
    use crate::diagnose::{Check, Step};
    let client = Influx::from_settings(settings);
    Step::new("influx", async move {
        let Some(influx) = client else {
            return Check::warn(
                "not configured (INFLUXDB_URL is empty); services run without InfluxDB",
            );
        };
        match influx.health().await {
            Ok(status) if status == "pass" => {}
            Ok(status) => return Check::fail(format!("health is {status:?}")),
            Err(error) => return Check::fail(error.to_string()),
        }
        match influx.bucket_exists().await {
            Ok(true) => Check::pass(format!(
                "healthy, token accepted, bucket {:?} exists",
                influx.bucket()
            )),
            Ok(false) => Check::fail(format!(
                "bucket {:?} not found (INFLUXDB_BUCKET / INFLUXDB_ORG)",
                influx.bucket()
            )),
            Err(error) => Check::fail(error.to_string()),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_protocol_escapes_what_must_be_escaped() {
        let time = DateTime::parse_from_rfc3339("2026-11-23T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let line = Point::new("power, house")
            .tag("entity id", "sensor.pv=1,a")
            .float("value", 1500.0)
            .field("note", FieldValue::String("say \"hi\" \\ ok".into()))
            .field("count", FieldValue::Integer(3))
            .field("on", FieldValue::Boolean(true))
            .time(time)
            .to_line()
            .unwrap();
        assert_eq!(
            line,
            r#"power\,\ house,entity\ id=sensor.pv\=1\,a value=1500.0,note="say \"hi\" \\ ok",count=3i,on=true 1795392000000000000"#
        );
        assert!(Point::new("m").to_line().is_err());
        assert!(Point::new("m").float("v", f64::NAN).to_line().is_err());
    }

    #[test]
    fn hostile_values_stay_inside_their_literals() {
        let hostile = "hass\") |> drop() //${x}";
        let flux = FluxQuery::new("from(bucket: params.bucket) |> range(start: params.start)")
            .param("bucket", FluxParam::String(hostile.into()))
            .param("start", FluxParam::Duration("-24h".into()))
            .render()
            .unwrap();
        assert_eq!(
            flux,
            "params = {bucket: \"hass\\\") |> drop() //\\${x}\", start: -24h}\nfrom(bucket: params.bucket) |> range(start: params.start)"
        );
        for bad in ["-1h) |> drop(", "24", "h", "-", "1h 2m", "1x"] {
            let error = FluxQuery::new("x")
                .param("start", FluxParam::Duration(bad.into()))
                .render()
                .unwrap_err();
            assert!(error.to_string().contains("not a Flux duration"), "{bad}");
        }
        assert!(FluxQuery::new("x")
            .param("a b", FluxParam::Integer(1))
            .render()
            .is_err());
        assert!(valid_duration("1h30m") && valid_duration("-7d") && valid_duration("1mo"));
    }
}
