//! With InfluxDB configured, pv-forecast learns from the PV meter's history there
//! (years, where HA's recorder keeps days). InfluxDB 2 cannot run here: a loopback
//! server speaks its documented HTTP API for what we use (`POST /api/v2/query` with
//! `Authorization: Token`, a Flux query and the annotated-CSV dialect; the answer in
//! annotated CSV, as Home Assistant's InfluxDB v2 integration lays the data out:
//! measurement = unit, tags `domain` and `entity_id`, field `value`). It does not
//! interpret Flux; it records the query. Open-Meteo is a loopback server too, with a
//! generated sky for the past days. Home Assistant is unreachable on purpose.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use chrono::{DateTime, Duration, DurationRound, Utc};
use homelab::testkit::{free_port, Broker, Probe, ServiceProcess};
use pv_forecast::calibrate::clear_sky_ghi;
use pv_forecast::model::{baseline_kwh, Site};
use pv_forecast::solar::{sun_position, Array};
use pv_forecast::weather::WeatherHour;
use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

const TOKEN: &str = "influx-test-token";

fn site() -> Site {
    Site {
        latitude: 52.0,
        longitude: 7.6,
        sun_shift_days: 0,
        arrays: vec![Array {
            kwp: 6.0,
            tilt_deg: 30.0,
            azimuth_deg: 180.0,
            ac_kw: None,
        }],
    }
}

/// The sky of the hour starting at `start`: clear-sky GHI dimmed by the day's clouds.
fn sky(start: DateTime<Utc>) -> WeatherHour {
    let sun = sun_position(start + Duration::minutes(30), 52.0, 7.6);
    // Every other day clear, the rest cloudy by a fixed pattern.
    let day = start.timestamp() / 86_400;
    let cloud = if day % 2 == 0 {
        0.0
    } else {
        ((day * 37) % 90) as f64
    };
    WeatherHour {
        start,
        ghi: clear_sky_ghi(sun.cos_zenith()) * (1.0 - 0.6 * cloud / 100.0),
        dni: None,
        dhi: None,
        temperature_c: Some(12.0),
        cloud_cover: Some(cloud),
    }
}

fn first_hour(past_days: i64) -> DateTime<Utc> {
    Utc::now().duration_trunc(Duration::days(1)).unwrap() - Duration::days(past_days)
}

/// Open-Meteo's hourly answer: the stamp is the end of the hour its radiation covers.
async fn open_meteo(Query(query): Query<HashMap<String, String>>) -> String {
    let past_days: i64 = query
        .get("past_days")
        .and_then(|d| d.parse().ok())
        .unwrap_or(0);
    let start = first_hour(past_days);
    let hours = (past_days + 2) * 24;
    let (mut time, mut ghi, mut cloud, mut temperature) = (vec![], vec![], vec![], vec![]);
    for hour in 0..hours {
        let weather = sky(start + Duration::hours(hour));
        time.push(
            (weather.start + Duration::hours(1))
                .format("%Y-%m-%dT%H:%M")
                .to_string(),
        );
        ghi.push(weather.ghi);
        cloud.push(weather.cloud_cover.unwrap());
        temperature.push(12.0);
    }
    serde_json::json!({"utc_offset_seconds": 0, "hourly": {"time": time,
        "shortwave_radiation": ghi, "cloud_cover": cloud, "temperature_2m": temperature}})
    .to_string()
}

#[derive(Default)]
struct FakeInflux {
    queries: Vec<String>,
}

/// `POST /api/v2/query`: the PV meter's readings, one per hour, in annotated CSV.
async fn influx_query(
    State(fake): State<Arc<Mutex<FakeInflux>>>,
    headers: HeaderMap,
    body: String,
) -> (StatusCode, String) {
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(&format!("Token {TOKEN}"))
    {
        return (
            StatusCode::UNAUTHORIZED,
            r#"{"code":"unauthorized","message":"unauthorized access"}"#.into(),
        );
    }
    let request: serde_json::Value = serde_json::from_str(&body).unwrap();
    fake.lock()
        .unwrap()
        .queries
        .push(request["query"].as_str().unwrap().to_string());
    let mut csv = String::from(
        "#datatype,string,long,dateTime:RFC3339,double,string,string\r\n#group,false,false,false,false,true,true\r\n#default,_result,,,,,\r\n,result,table,_time,_value,_field,_measurement\r\n",
    );
    let start = first_hour(20);
    for hour in 0..20 * 24 {
        let weather = sky(start + Duration::hours(hour));
        // The real roof makes 85 % of what the entered one would (soiling, wiring).
        let watts = 0.85 * baseline_kwh(&site(), &weather) * 1000.0;
        csv.push_str(&format!(
            ",,0,{},{watts:.1},value,W\r\n",
            weather
                .start
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        ));
    }
    csv.push_str("\r\n");
    (StatusCode::OK, csv)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_meter_s_history_comes_from_influxdb_when_it_is_configured() {
    let broker = Broker::start();
    let fake = Arc::new(Mutex::new(FakeInflux::default()));
    let app = axum::Router::new()
        .route("/v1/forecast", get(open_meteo))
        .route("/api/v2/query", post(influx_query))
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let data = tempfile::tempdir().unwrap();
    let mut probe = Probe::connect(broker.port(), &["homelab/pv-forecast/model"]).await;
    let _service = ServiceProcess::spawn(
        Command::new(env!("CARGO_BIN_EXE_pv-forecast"))
            .current_dir(data.path())
            .env_clear()
            .env("MQTT_HOST", "127.0.0.1")
            .env("MQTT_PORT", broker.port().to_string())
            .env("DATA_DIR", data.path())
            .env("TIMEZONE", "UTC")
            .env("HA_URL", format!("http://127.0.0.1:{}", free_port()))
            .env("HA_TOKEN", "not-used")
            .env("INFLUXDB_URL", format!("http://127.0.0.1:{port}"))
            .env("INFLUXDB_TOKEN", TOKEN)
            .env("INFLUXDB_ORG", "home")
            .env("INFLUXDB_BUCKET", "hass")
            .env("HOME_LATITUDE", "52.0")
            .env("HOME_LONGITUDE", "7.6")
            .env("PV_FORECAST_ARRAYS", "6/30/180")
            .env("PV_FORECAST_POWER_ENTITY", "sensor.pv_power")
            .env("PV_FORECAST_TRAIN_DAYS", "20")
            .env(
                "PV_FORECAST_OPEN_METEO_URL",
                format!("http://127.0.0.1:{port}"),
            )
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    let model = probe
        .wait_for(
            "homelab/pv-forecast/model",
            StdDuration::from_secs(60),
            |_| true,
        )
        .await
        .expect("a model trained at start");
    let report = &model["report"];
    assert!(
        report["training_days"].as_u64().unwrap() >= 19,
        "20 days of Influx history with HA unreachable: {model}"
    );
    assert!(model["samples"].as_u64().unwrap() > 400, "{model}");
    // The roof really makes 85 %: the fit finds that size, within the bounds.
    let roof = report["calibration_note"].as_str().unwrap();
    assert!(roof.starts_with("roof fitted: "), "{roof}");
    let queries = fake.lock().unwrap().queries.clone();
    assert_eq!(queries.len(), 1, "{queries:?}");
    assert!(
        queries[0].contains(r#"domain: "sensor""#)
            && queries[0].contains(r#"entity_id: "pv_power""#)
            && queries[0].contains(r#"bucket: "hass""#),
        "values are bound as params: {}",
        queries[0]
    );
}
