//! Google Calendar with a service account, end to end with the real binary and the
//! real mosquitto. Google cannot be reached from here: a loopback server speaks the
//! token endpoint (RFC 7523 JWT bearer grant, form-encoded, as Google documents it for
//! service accounts) and the Calendar API's `events.list` (JSON shape, paging with
//! `nextPageToken`, `singleEvents=true`) as documented. It checks the signed request
//! with `openssl dgst -verify` against the key's public half: a second, independent
//! implementation of RS256, not the one that signed it.

mod common;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use base64::Engine;
use homelab::testkit::{Broker, Probe, ServiceProcess};
use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const CALENDAR: &str = "family@group.calendar.google.com";
const ACCOUNT: &str = "homelab@house-123.iam.gserviceaccount.com";
const ACCESS_TOKEN: &str = "ya29.loopback-access-token";

struct Google {
    public_key: std::path::PathBuf,
    token_url: String,
    tokens_issued: AtomicUsize,
    /// The claims of the last signed request that verified.
    claims: Mutex<Option<serde_json::Value>>,
    page_tokens: Mutex<Vec<Option<String>>>,
}

/// `openssl genpkey` writes PKCS#8 (`BEGIN PRIVATE KEY`), as Google's key files carry.
fn rsa_key_pair(dir: &std::path::Path, name: &str) -> (String, std::path::PathBuf) {
    let private = dir.join(format!("{name}.pem"));
    let public = dir.join(format!("{name}.pub.pem"));
    let run = |args: &[&str]| {
        let status = Command::new("openssl")
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("openssl is installed (Debian's openssl package)");
        assert!(status.success(), "openssl {args:?}");
    };
    run(&[
        "genpkey",
        "-algorithm",
        "RSA",
        "-pkeyopt",
        "rsa_keygen_bits:2048",
        "-out",
        private.to_str().unwrap(),
    ]);
    run(&[
        "pkey",
        "-in",
        private.to_str().unwrap(),
        "-pubout",
        "-out",
        public.to_str().unwrap(),
    ]);
    (std::fs::read_to_string(&private).unwrap(), public)
}

fn form(body: &str) -> HashMap<String, String> {
    body.split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| {
            (
                urlencoding::decode(k).unwrap().into_owned(),
                urlencoding::decode(&v.replace('+', " "))
                    .unwrap()
                    .into_owned(),
            )
        })
        .collect()
}

/// Verifies an RS256 JWT with openssl; returns its claims.
fn verify(jwt: &str, public_key: &std::path::Path) -> Option<serde_json::Value> {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let (signed, signature) = jwt.rsplit_once('.')?;
    let (header, claims) = signed.split_once('.')?;
    let header: serde_json::Value = serde_json::from_slice(&b64.decode(header).ok()?).ok()?;
    if header["alg"] != "RS256" {
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("signed"), signed).unwrap();
    std::fs::write(dir.path().join("signature"), b64.decode(signature).ok()?).unwrap();
    let verified = Command::new("openssl")
        .args(["dgst", "-sha256", "-verify"])
        .arg(public_key)
        .arg("-signature")
        .arg(dir.path().join("signature"))
        .arg(dir.path().join("signed"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success();
    verified.then(|| serde_json::from_slice(&b64.decode(claims).ok()?).ok())?
}

async fn token(State(google): State<Arc<Google>>, body: String) -> (StatusCode, String) {
    let fields = form(&body);
    if fields.get("grant_type").map(String::as_str)
        != Some("urn:ietf:params:oauth:grant-type:jwt-bearer")
    {
        return (
            StatusCode::BAD_REQUEST,
            r#"{"error":"unsupported_grant_type"}"#.into(),
        );
    }
    let public_key = google.public_key.clone();
    let assertion = fields.get("assertion").cloned().unwrap_or_default();
    let claims = tokio::task::spawn_blocking(move || verify(&assertion, &public_key))
        .await
        .unwrap();
    let Some(claims) = claims else {
        return (
            StatusCode::BAD_REQUEST,
            r#"{"error":"invalid_grant","error_description":"Invalid JWT Signature."}"#.into(),
        );
    };
    let lifetime = claims["exp"].as_i64().unwrap_or(0) - claims["iat"].as_i64().unwrap_or(0);
    if claims["aud"] != google.token_url.as_str() || !(1..=3600).contains(&lifetime) {
        return (
            StatusCode::BAD_REQUEST,
            r#"{"error":"invalid_grant","error_description":"Invalid JWT: aud or exp"}"#.into(),
        );
    }
    *google.claims.lock().unwrap() = Some(claims);
    google.tokens_issued.fetch_add(1, Ordering::SeqCst);
    (
        StatusCode::OK,
        format!(r#"{{"access_token":"{ACCESS_TOKEN}","expires_in":3599,"token_type":"Bearer"}}"#),
    )
}

fn at(hours: i64) -> String {
    (chrono::Utc::now() + chrono::Duration::hours(hours)).to_rfc3339()
}

async fn events(
    State(google): State<Arc<Google>>,
    Path(calendar): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> (StatusCode, String) {
    if headers.get("authorization").and_then(|v| v.to_str().ok())
        != Some(&format!("Bearer {ACCESS_TOKEN}"))
    {
        return (
            StatusCode::UNAUTHORIZED,
            r#"{"error":{"code":401,"message":"Request had invalid authentication credentials."}}"#
                .into(),
        );
    }
    if calendar != CALENDAR {
        return (
            StatusCode::NOT_FOUND,
            r#"{"error":{"code":404,"message":"Not Found"}}"#.into(),
        );
    }
    assert_eq!(query.get("singleEvents").map(String::as_str), Some("true"));
    assert!(query.contains_key("timeMin") && query.contains_key("timeMax"));
    let page = query.get("pageToken").cloned();
    google.page_tokens.lock().unwrap().push(page.clone());
    let body = match page.as_deref() {
        None => serde_json::json!({
            "kind": "calendar#events",
            "timeZone": "Europe/Berlin",
            "nextPageToken": "page-2",
            "items": [{
                "id": "office1", "status": "confirmed", "summary": "Office",
                "location": "ACME Office, Dortmund",
                "start": {"dateTime": at(6), "timeZone": "Europe/Berlin"}
            }]
        }),
        Some("page-2") => serde_json::json!({
            "kind": "calendar#events",
            "timeZone": "Europe/Berlin",
            "items": [
                {"id": "gone", "status": "cancelled"},
                {"id": "grandma1", "status": "confirmed", "summary": "Grandma",
                 "location": "Bremen", "start": {"dateTime": at(20)}}
            ]
        }),
        Some(other) => panic!("unknown page token {other}"),
    };
    (StatusCode::OK, body.to_string())
}

struct Site {
    google: Arc<Google>,
    port: u16,
    dir: tempfile::TempDir,
}

/// The loopback Google, and a key file for `signing_key` (the server trusts `trusted`).
async fn google_site(sign_with_trusted_key: bool) -> Site {
    let dir = tempfile::tempdir().unwrap();
    let (trusted_private, trusted_public) = rsa_key_pair(dir.path(), "trusted");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let token_url = format!("http://127.0.0.1:{port}/token");
    let google = Arc::new(Google {
        public_key: trusted_public,
        token_url: token_url.clone(),
        tokens_issued: AtomicUsize::new(0),
        claims: Mutex::new(None),
        page_tokens: Mutex::new(Vec::new()),
    });
    let app = axum::Router::new()
        .route("/token", post(token))
        .route("/calendar/v3/calendars/{calendar}/events", get(events))
        .with_state(google.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let private = if sign_with_trusted_key {
        trusted_private
    } else {
        rsa_key_pair(dir.path(), "stranger").0
    };
    // The fields of a key file as Google's console downloads it.
    let key_file = serde_json::json!({
        "type": "service_account",
        "project_id": "house-123",
        "private_key_id": "0123456789abcdef",
        "private_key": private,
        "client_email": ACCOUNT,
        "client_id": "1234567890",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": token_url,
    });
    std::fs::write(dir.path().join("key.json"), key_file.to_string()).unwrap();
    Site { google, port, dir }
}

fn ev_forecast(site: &Site, broker: u16, calendars: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ev-forecast"));
    command
        .current_dir(site.dir.path())
        .env_clear()
        .env("MQTT_HOST", "127.0.0.1")
        .env("MQTT_PORT", broker.to_string())
        .env("DATA_DIR", site.dir.path())
        .env("HOME_LATITUDE", "51.9625")
        .env("HOME_LONGITUDE", "7.6256")
        .env(
            "GOOGLE_SERVICE_ACCOUNT_FILE",
            site.dir.path().join("key.json"),
        )
        .env("GOOGLE_CALENDAR_IDS", calendars)
        .env(
            "GOOGLE_CALENDAR_API_URL",
            format!("http://127.0.0.1:{}/calendar/v3", site.port),
        )
        .env("EV_FORECAST_DISTANCES", "ACME Office=40;Bremen=170")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    command
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trips_come_from_google_calendar_with_a_signed_service_account_token() {
    let broker = Broker::start();
    let site = google_site(true).await;
    let mut probe = Probe::connect(broker.port(), &["homelab/ev-forecast/plan"]).await;
    let _service = ServiceProcess::spawn(&mut ev_forecast(&site, broker.port(), CALENDAR));
    let plan = probe
        .wait_for("homelab/ev-forecast/plan", Duration::from_secs(30), |_| {
            true
        })
        .await
        .expect("a plan from Google Calendar");
    let trips: Vec<(String, f64)> = plan["trips"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["summary"].as_str().unwrap().to_string(),
                t["distance_km"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        trips,
        vec![("Office".to_string(), 40.0), ("Grandma".to_string(), 170.0)],
        "both pages read, the cancelled event left out: {plan}"
    );
    let claims = site.google.claims.lock().unwrap().clone().unwrap();
    assert_eq!(claims["iss"], ACCOUNT);
    assert_eq!(
        claims["scope"],
        "https://www.googleapis.com/auth/calendar.readonly"
    );
    assert_eq!(
        *site.google.page_tokens.lock().unwrap(),
        vec![None, Some("page-2".to_string())]
    );

    // A second refresh uses the same access token (valid for an hour).
    common::refresh(&probe).await;
    probe
        .wait_for("homelab/ev-forecast/plan", Duration::from_secs(20), |_| {
            true
        })
        .await
        .expect("a second plan");
    assert_eq!(site.google.page_tokens.lock().unwrap().len(), 4);
    assert_eq!(site.google.tokens_issued.load(Ordering::SeqCst), 1);
}

/// diagnose says what is wrong: a key Google does not know, a calendar not shared.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diagnose_names_a_refused_key_and_a_calendar_not_shared() {
    let broker = Broker::start();
    let detail = |site: &Site, calendars: &str| {
        let output = ev_forecast(site, broker.port(), calendars)
            .args(["diagnose", "--step", "calendar", "--json"])
            .stdout(Stdio::piped())
            .output()
            .unwrap();
        let step = common::diagnose_step(&output.stdout, "calendar");
        (
            output.status.code(),
            step["status"].as_str().unwrap().to_string(),
            step["detail"].as_str().unwrap().to_string(),
        )
    };

    let site = google_site(true).await;
    let (code, status, text) = tokio::task::block_in_place(|| detail(&site, CALENDAR));
    assert_eq!((code, status.as_str()), (Some(0), "pass"), "{text}");
    assert!(
        text.starts_with(&format!(
            "1 calendar(s) (Google as {ACCOUNT}), 2 event(s) in the next 48 h"
        )),
        "{text}"
    );
    let (code, status, text) =
        tokio::task::block_in_place(|| detail(&site, "someone-else@gmail.com"));
    assert_eq!((code, status.as_str()), (Some(1), "fail"));
    assert!(
        text.contains("Google calendar someone-else@gmail.com")
            && text.contains("HTTP 404")
            && text.contains(&format!("is the calendar shared with {ACCOUNT}?")),
        "{text}"
    );

    let stranger = google_site(false).await;
    let (code, status, text) = tokio::task::block_in_place(|| detail(&stranger, CALENDAR));
    assert_eq!((code, status.as_str()), (Some(1), "fail"));
    assert!(
        text.contains(&format!(
            "Google refused the service account {ACCOUNT} a token"
        )) && text.contains("invalid_grant"),
        "{text}"
    );
    assert!(!text.contains("PRIVATE KEY"), "{text}");
}
