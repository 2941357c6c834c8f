//! The InfluxDB v2 client against a loopback server written here, because InfluxDB 2
//! cannot be installed on our machines. The server speaks the v2 HTTP API as the real
//! one does for what we use: `Authorization: Token …`, `org`/`bucket` query
//! parameters, 204 on `/api/v2/write`, 401/404 with JSON `{code, message}`, annotated
//! CSV (CRLF, `#datatype`/`#group`/`#default`, one table per series, blank line
//! between tables) from `/api/v2/query`, in-band error tables, `/health` and
//! `/api/v2/buckets`. It does NOT interpret Flux: it records the query text and
//! answers with the points written so far, one table per `entity_id`.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use homelab::influx::{FluxParam, FluxQuery, Influx, Point};
use homelab::testkit::free_port;
use homelab::{CommonSettings, Secret};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

const TOKEN: &str = "test-token";

#[derive(Default)]
struct Fake {
    write_requests: usize,
    lines: Vec<String>,
    queries: Vec<String>,
}

type Shared = Arc<Mutex<Fake>>;

fn json_error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(serde_json::json!({"code": code, "message": message})),
    )
        .into_response()
}

fn authorized(headers: &HeaderMap) -> bool {
    headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(&format!("Token {TOKEN}"))
}

async fn write(
    State(fake): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
    body: String,
) -> Response {
    if !authorized(&headers) {
        return json_error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "unauthorized access",
        );
    }
    if q.get("org").map(String::as_str) != Some("homelab") {
        return json_error(
            StatusCode::NOT_FOUND,
            "not found",
            "organization name \"x\" not found",
        );
    }
    let bucket = q.get("bucket").cloned().unwrap_or_default();
    if bucket != "hass" {
        return json_error(
            StatusCode::NOT_FOUND,
            "not found",
            &format!("bucket \"{bucket}\" not found"),
        );
    }
    let mut fake = fake.lock().unwrap();
    fake.write_requests += 1;
    fake.lines.extend(body.lines().map(str::to_string));
    StatusCode::NO_CONTENT.into_response()
}

#[derive(Deserialize)]
struct QueryBody {
    query: String,
    #[serde(rename = "type")]
    kind: String,
    dialect: serde_json::Value,
}

const HEAD: &str = "#datatype,string,long,dateTime:RFC3339,dateTime:RFC3339,dateTime:RFC3339,double,string,string,string\r\n#group,false,false,true,true,false,false,true,true,true\r\n#default,_result,,,,,,,,\r\n,result,table,_start,_stop,_time,_value,_field,_measurement,entity_id\r\n";

async fn query(
    State(fake): State<Shared>,
    headers: HeaderMap,
    Json(body): Json<QueryBody>,
) -> Response {
    if !authorized(&headers) {
        return json_error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "unauthorized access",
        );
    }
    if body.kind != "flux" || body.dialect["annotations"].as_array().map_or(0, Vec::len) != 3 {
        return json_error(
            StatusCode::BAD_REQUEST,
            "invalid",
            "expected a flux query with annotations",
        );
    }
    let mut fake = fake.lock().unwrap();
    fake.queries.push(body.query.clone());
    if body.query.contains("error_test") {
        let csv = "#datatype,string,string\r\n#group,true,true\r\n#default,,\r\n,error,reference\r\n,\"runtime error: division by zero\",\r\n\r\n";
        return (StatusCode::OK, csv).into_response();
    }
    // measurement,entity_id=… value=… ns — the shape our test writes.
    let mut series: BTreeMap<String, Vec<(i64, String)>> = BTreeMap::new();
    for line in &fake.lines {
        let mut parts = line.split(' ');
        let (series_key, field, time) = (
            parts.next().unwrap(),
            parts.next().unwrap(),
            parts.next().unwrap(),
        );
        let entity = series_key
            .split(",entity_id=")
            .nth(1)
            .unwrap_or("")
            .to_string();
        let value = field.trim_start_matches("value=").to_string();
        series
            .entry(entity)
            .or_default()
            .push((time.parse().unwrap(), value));
    }
    let mut csv = String::new();
    for (table, (entity, points)) in series.iter().enumerate() {
        csv.push_str(HEAD);
        for (nanos, value) in points {
            let time = chrono::DateTime::from_timestamp_nanos(*nanos)
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            csv.push_str(&format!(",,{table},2026-11-22T00:00:00Z,2026-11-23T00:00:00Z,{time},{value},value,W,{entity}\r\n"));
        }
        csv.push_str("\r\n");
    }
    (
        StatusCode::OK,
        [("content-type", "text/csv; charset=utf-8")],
        csv,
    )
        .into_response()
}

async fn health() -> Json<serde_json::Value> {
    Json(
        serde_json::json!({"name": "influxdb", "message": "ready for queries and writes", "status": "pass", "checks": [], "version": "v2.7.11", "commit": "fbf5d4ab5e"}),
    )
}

async fn buckets(headers: HeaderMap, Query(q): Query<HashMap<String, String>>) -> Response {
    if !authorized(&headers) {
        return json_error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "unauthorized access",
        );
    }
    let found: Vec<serde_json::Value> = (q.get("name").map(String::as_str) == Some("hass"))
        .then(|| serde_json::json!({"id": "0a1b2c3d4e5f6a7b", "orgID": "1b2c3d4e5f6a7b8c", "type": "user", "name": "hass", "retentionRules": []}))
        .into_iter()
        .collect();
    Json(serde_json::json!({"links": {"self": "/api/v2/buckets?descending=false&limit=20&offset=0"}, "buckets": found})).into_response()
}

async fn start_fake() -> (u16, Shared) {
    let fake = Shared::default();
    let app = Router::new()
        .route("/api/v2/write", post(write))
        .route("/api/v2/query", post(query))
        .route("/api/v2/buckets", get(buckets))
        .route("/health", get(health))
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (port, fake)
}

fn client(port: u16, token: &str, bucket: &str) -> Influx {
    Influx::new(
        &format!("http://127.0.0.1:{port}"),
        Secret::new(token),
        "homelab",
        bucket,
    )
}

fn at(hour: u32) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(&format!("2026-11-22T{hour:02}:00:00Z"))
        .unwrap()
        .with_timezone(&chrono::Utc)
}

#[derive(Debug, Deserialize, PartialEq)]
struct Sample {
    #[serde(rename = "_time")]
    time: String,
    #[serde(rename = "_value")]
    value: f64,
    entity_id: String,
}

#[tokio::test]
async fn writes_arrive_as_line_protocol_in_batches_and_queries_return_typed_rows() {
    let (port, fake) = start_fake().await;
    let influx = client(port, TOKEN, "hass");
    let mut points = vec![
        Point::new("W")
            .tag("entity_id", "sensor.pv_power")
            .float("value", 1500.0)
            .time(at(10)),
        Point::new("W")
            .tag("entity_id", "sensor.pv_power")
            .float("value", 2500.5)
            .time(at(11)),
        Point::new("W")
            .tag("entity_id", "sensor.house_load")
            .float("value", 300.0)
            .time(at(10)),
    ];
    influx.write(&points).await.unwrap();
    {
        let fake = fake.lock().unwrap();
        assert_eq!(fake.write_requests, 1);
        assert_eq!(
            fake.lines[0],
            "W,entity_id=sensor.pv_power value=1500.0 1795341600000000000"
        );
        assert_eq!(
            fake.lines[2],
            "W,entity_id=sensor.house_load value=300.0 1795341600000000000"
        );
    }

    let rows: Vec<Sample> = influx
        .query_as(
            &FluxQuery::new("from(bucket: params.bucket) |> range(start: params.start)")
                .param("bucket", FluxParam::String("hass".into()))
                .param("start", FluxParam::Duration("-24h".into())),
        )
        .await
        .unwrap();
    assert_eq!(
        rows,
        vec![
            Sample {
                time: "2026-11-22T10:00:00Z".into(),
                value: 300.0,
                entity_id: "sensor.house_load".into()
            },
            Sample {
                time: "2026-11-22T10:00:00Z".into(),
                value: 1500.0,
                entity_id: "sensor.pv_power".into()
            },
            Sample {
                time: "2026-11-22T11:00:00Z".into(),
                value: 2500.5,
                entity_id: "sensor.pv_power".into()
            },
        ],
        "both tables, values typed by #datatype"
    );

    // 12,001 more points go out in three requests of at most 5,000 lines.
    points = (0..12_001)
        .map(|n| {
            Point::new("W")
                .tag("entity_id", "sensor.bulk")
                .float("value", n as f64)
                .time(at(12))
        })
        .collect();
    influx.write(&points).await.unwrap();
    assert_eq!(fake.lock().unwrap().write_requests, 4);
    assert_eq!(fake.lock().unwrap().lines.len(), 12_004);
}

#[tokio::test]
async fn a_hostile_value_cannot_change_the_flux_text() {
    let (port, fake) = start_fake().await;
    let influx = client(port, TOKEN, "hass");
    let hostile = "sensor.x\") |> drop(columns: [\"_value\"]) // ${secret}";
    influx
        .query(&FluxQuery::new("from(bucket: \"hass\") |> range(start: -1h) |> filter(fn: (r) => r.entity_id == params.entity)")
            .param("entity", FluxParam::String(hostile.into())))
        .await
        .unwrap();
    let sent = fake.lock().unwrap().queries.last().cloned().unwrap();
    assert_eq!(
        sent,
        "params = {entity: \"sensor.x\\\") |> drop(columns: [\\\"_value\\\"]) // \\${secret}\"}\nfrom(bucket: \"hass\") |> range(start: -1h) |> filter(fn: (r) => r.entity_id == params.entity)"
    );
    let error = influx
        .query(
            &FluxQuery::new("range(start: params.start)")
                .param("start", FluxParam::Duration("-1h) |> drop(".into())),
        )
        .await
        .unwrap_err();
    assert!(
        !error.is_transient() && error.to_string().contains("not a Flux duration"),
        "{error}"
    );
    assert_eq!(
        fake.lock().unwrap().queries.len(),
        1,
        "a refused parameter sends nothing"
    );
}

#[tokio::test]
async fn errors_say_what_is_wrong_and_whether_to_retry() {
    let (port, _fake) = start_fake().await;
    let point = [Point::new("W").float("value", 1.0)];
    let unauthorized = client(port, "wrong", "hass")
        .write(&point)
        .await
        .unwrap_err();
    assert_eq!(
        (unauthorized.is_transient(), unauthorized.status),
        (false, Some(401))
    );
    let missing = client(port, TOKEN, "nope").write(&point).await.unwrap_err();
    assert_eq!(missing.status, Some(404));
    assert!(
        missing.to_string().contains("bucket \"nope\" not found"),
        "{missing}"
    );
    let in_band = client(port, TOKEN, "hass")
        .query(&FluxQuery::new("error_test"))
        .await
        .unwrap_err();
    assert!(
        in_band.to_string().contains("division by zero"),
        "{in_band}"
    );
    let down = client(free_port(), TOKEN, "hass")
        .write(&point)
        .await
        .unwrap_err();
    assert!(
        down.is_transient(),
        "connection refused is transient: {down}"
    );
}

#[tokio::test]
async fn the_diagnose_step_passes_warns_when_unconfigured_and_fails_on_a_missing_bucket() {
    let (port, _fake) = start_fake().await;
    let configured = |bucket: &str| CommonSettings {
        influxdb_url: format!("http://127.0.0.1:{port}"),
        influxdb_token: Secret::new(TOKEN),
        influxdb_org: "homelab".into(),
        influxdb_bucket: bucket.into(),
        ..CommonSettings::default()
    };
    let run = |settings: CommonSettings| async move {
        let report = homelab::diagnose::run(
            "t",
            "0",
            (homelab::Check::pass("ok"), std::time::Duration::ZERO),
            vec![homelab::influx::diagnose_step(&settings)],
        )
        .await;
        report.steps[1].clone()
    };
    let pass = run(configured("hass")).await;
    assert_eq!(
        pass.status,
        homelab::diagnose::Outcome::Pass,
        "{}",
        pass.detail
    );
    let missing = run(configured("nope")).await;
    assert_eq!(missing.status, homelab::diagnose::Outcome::Fail);
    assert!(missing.detail.contains("not found"), "{}", missing.detail);
    let unconfigured = run(CommonSettings::default()).await;
    assert_eq!(unconfigured.status, homelab::diagnose::Outcome::Warn);
    assert!(unconfigured.detail.contains("not configured"));
    assert!(Influx::from_settings(&CommonSettings::default()).is_none());
}
