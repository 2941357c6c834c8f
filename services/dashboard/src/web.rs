//! The HTTP side: sign-in, the page and its sections, live updates (SSE), the two
//! commands (charging mode, a decision on an action) as forms and as `/api/v1`.

use crate::auth::{self, Auth, Refusal, Session};
use crate::live::{Live, Section};
use crate::view;
use axum::extract::{ConnectInfo, Form, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::Utc;
use homelab::messages::health_monitor::{decision_topic, Decision};
use homelab::mqtt::{Mqtt, QoS};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

const COOKIE: &str = "homelab_session";

#[derive(Clone)]
pub(crate) struct App {
    pub(crate) live: Arc<Live>,
    pub(crate) auth: Arc<Auth>,
    pub(crate) mqtt: Mqtt,
}

pub(crate) fn router(app: App) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/section/{name}", get(section))
        .route("/events", get(events))
        .route("/charging/mode", post(set_mode_form))
        .route("/actions/{id}/{verb}", post(decide_form))
        .route("/api/v1/openapi.json", get(openapi))
        .route("/api/v1/overview", get(api_overview))
        .route("/api/v1/charging/mode", post(api_set_mode))
        .route("/api/v1/actions/{id}/{verb}", post(api_decide))
        .with_state(app)
}

fn token_of(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|cookies| cookies.split(';'))
        .find_map(|pair| {
            pair.trim()
                .strip_prefix(&format!("{COOKIE}="))
                .map(str::to_string)
        })
}

fn session_of(app: &App, headers: &HeaderMap) -> Option<(String, Session)> {
    let token = token_of(headers)?;
    app.auth
        .session(&token, Utc::now())
        .map(|session| (token, session))
}

fn forbidden() -> Response {
    (StatusCode::FORBIDDEN, "invalid or missing CSRF token").into_response()
}

async fn index(State(app): State<App>, headers: HeaderMap) -> Response {
    match session_of(&app, &headers) {
        None => Redirect::to("/login").into_response(),
        Some((_, session)) => Html(
            view::page(
                &app.live.snapshot(),
                &session.user,
                &session.csrf,
                Utc::now(),
            )
            .into_string(),
        )
        .into_response(),
    }
}

async fn login_page() -> Html<String> {
    Html(view::login(None).into_string())
}

#[derive(Deserialize)]
struct Credentials {
    username: String,
    password: String,
}

async fn login(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Form(credentials): Form<Credentials>,
) -> Response {
    let from = peer.ip();
    if let Err(Refusal::RateLimited {
        retry_after_seconds,
    }) = app.auth.check_rate(from, Utc::now())
    {
        tracing::warn!(from = %from, retry_after_seconds, "login_rate_limited");
        let page = view::login(Some(
            "Too many failed sign-ins from here; wait a few minutes.",
        ));
        let mut response =
            (StatusCode::TOO_MANY_REQUESTS, Html(page.into_string())).into_response();
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_seconds));
        return response;
    }
    let hash = app.auth.password_hash().to_string();
    let password = credentials.password;
    let password_ok = tokio::task::spawn_blocking(move || auth::verify_password(&password, &hash))
        .await
        .unwrap_or(false);
    match app
        .auth
        .finish_login(&credentials.username, password_ok, from, Utc::now())
    {
        Ok((token, _)) => {
            tracing::info!(user = %credentials.username, from = %from, "login");
            let cookie = format!("{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/");
            let mut response = Redirect::to("/").into_response();
            if let Ok(value) = HeaderValue::from_str(&cookie) {
                response.headers_mut().insert(header::SET_COOKIE, value);
            }
            response
        }
        Err(_) => {
            tracing::warn!(from = %from, "login_failed");
            let page = view::login(Some("Wrong user or password."));
            (StatusCode::UNAUTHORIZED, Html(page.into_string())).into_response()
        }
    }
}

#[derive(Deserialize)]
struct CsrfForm {
    csrf: String,
}

async fn logout(
    State(app): State<App>,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Response {
    let Some((token, session)) = session_of(&app, &headers) else {
        return Redirect::to("/login").into_response();
    };
    if !auth::same_secret(&form.csrf, &session.csrf) {
        return forbidden();
    }
    app.auth.logout(&token);
    let mut response = Redirect::to("/login").into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("homelab_session=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"),
    );
    response
}

async fn section(State(app): State<App>, headers: HeaderMap, Path(name): Path<String>) -> Response {
    let Some((_, session)) = session_of(&app, &headers) else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    let Some(section) = Section::parse(&name) else {
        return (StatusCode::NOT_FOUND, format!("no section {name:?}")).into_response();
    };
    Html(view::render(section, &app.live.snapshot(), &session.csrf, Utc::now()).into_string())
        .into_response()
}

async fn events(State(app): State<App>, headers: HeaderMap) -> Response {
    if session_of(&app, &headers).is_none() {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let changes = app.live.changes();
    // First every section once: what changed between the page's render and this
    // connection (a reload after a command, a reconnect) is not missed.
    let catch_up = futures_util::stream::iter(Section::ALL.map(|section| {
        Ok::<_, Infallible>(Event::default().event("update").data(section.as_str()))
    }));
    let live = futures_util::stream::unfold(changes, |mut changes| async move {
        loop {
            match changes.recv().await {
                Ok(section) => {
                    let event = Event::default().event("update").data(section.as_str());
                    return Some((Ok::<_, Infallible>(event), changes));
                }
                // A slow page missed some: it refreshes everything it would have.
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    let stream = futures_util::StreamExt::chain(catch_up, live);
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// The same command HA's select sends: the mode as plain text on its `/set` topic.
async fn send_mode(app: &App, mode: &str, user: &str) -> Result<(), Response> {
    if !view::MODES.contains(&mode) {
        let message = format!("mode {mode:?} is not one of {}", view::MODES.join(", "));
        return Err((StatusCode::BAD_REQUEST, message).into_response());
    }
    let topic = homelab::discovery::command_topic("smart-ev-charging", "mode");
    app.mqtt
        .publish_raw(&topic, mode.as_bytes().to_vec(), QoS::AtLeastOnce, false)
        .await
        .map_err(|error| {
            (StatusCode::SERVICE_UNAVAILABLE, format!("broker: {error}")).into_response()
        })?;
    tracing::info!(mode, user, "charging_mode_sent");
    Ok(())
}

async fn send_decision(app: &App, id: &str, verb: &str, user: &str) -> Result<(), Response> {
    let approve = match verb {
        "approve" => true,
        "reject" => false,
        other => {
            return Err((
                StatusCode::NOT_FOUND,
                format!("{other:?} is not approve or reject"),
            )
                .into_response())
        }
    };
    if !homelab::messages::health_monitor::valid_action_id(id) {
        return Err((
            StatusCode::BAD_REQUEST,
            format!("{id:?} is not an action id"),
        )
            .into_response());
    }
    let decision = Decision {
        by: Some(user.to_string()),
    };
    app.mqtt
        .publish_json(
            &decision_topic(id, approve),
            &decision,
            QoS::AtLeastOnce,
            false,
        )
        .await
        .map_err(|error| {
            (StatusCode::SERVICE_UNAVAILABLE, format!("broker: {error}")).into_response()
        })?;
    tracing::info!(action_id = id, verb, user, "action_decision_sent");
    Ok(())
}

#[derive(Deserialize)]
struct ModeForm {
    csrf: String,
    mode: String,
}

async fn set_mode_form(
    State(app): State<App>,
    headers: HeaderMap,
    Form(form): Form<ModeForm>,
) -> Response {
    let Some((_, session)) = session_of(&app, &headers) else {
        return Redirect::to("/login").into_response();
    };
    if !auth::same_secret(&form.csrf, &session.csrf) {
        return forbidden();
    }
    match send_mode(&app, &form.mode, &session.user).await {
        Ok(()) => Redirect::to("/").into_response(),
        Err(response) => response,
    }
}

async fn decide_form(
    State(app): State<App>,
    headers: HeaderMap,
    Path((id, verb)): Path<(String, String)>,
    Form(form): Form<CsrfForm>,
) -> Response {
    let Some((_, session)) = session_of(&app, &headers) else {
        return Redirect::to("/login").into_response();
    };
    if !auth::same_secret(&form.csrf, &session.csrf) {
        return forbidden();
    }
    match send_decision(&app, &id, &verb, &session.user).await {
        Ok(()) => Redirect::to("/").into_response(),
        Err(response) => response,
    }
}

/// The API's description (OpenAPI 3.1), generated by utoipa from the handlers'
/// `#[utoipa::path]` attributes below and from the message types themselves, so the
/// schemas cannot drift from what is sent. A test checks that it lists exactly the
/// `/api/v1` routes; schemathesis checks every answer against it.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "homelab dashboard",
        version = "1",
        description = "Every call needs the session cookie that POST /login sets (homelab_session); commands also its X-CSRF-Token."
    ),
    paths(api_overview, api_set_mode, api_decide),
    // Path parameters' types are not collected by themselves.
    components(schemas(Verb))
)]
struct ApiDoc;

pub(crate) fn openapi_document() -> serde_json::Value {
    use utoipa::OpenApi;
    serde_json::to_value(ApiDoc::openapi()).expect("an OpenAPI document always serializes")
}

/// Everything the page shows, and the session's CSRF token for commands.
#[derive(Serialize, utoipa::ToSchema)]
struct Overview {
    #[serde(flatten)]
    snapshot: crate::live::Snapshot,
    csrf: String,
}

#[derive(Serialize, utoipa::ToSchema)]
struct ApiError {
    error: String,
}

/// What a command sent to the broker.
#[derive(Serialize, utoipa::ToSchema)]
struct Sent {
    sent: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    action_id: Option<String>,
}

/// The charging modes, as HA's select offers them (documentation only: the handler
/// reads a string and answers 400 naming the modes).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
#[schema(rename_all = "snake_case")]
enum ChargingMode {
    Off,
    Pv,
    MinPv,
    Fast,
    Smart,
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
#[schema(rename_all = "snake_case")]
enum Verb {
    Approve,
    Reject,
}

async fn openapi() -> Json<serde_json::Value> {
    Json(openapi_document())
}

/// API calls: a session cookie, and for commands its CSRF token in `X-CSRF-Token`.
type Denied = (StatusCode, Json<serde_json::Value>);

fn api_session(app: &App, headers: &HeaderMap, command: bool) -> Result<Session, Denied> {
    let Some((_, session)) = session_of(app, headers) else {
        return Err((
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "sign in first (POST /login)"})),
        ));
    };
    if command {
        let sent = headers
            .get("x-csrf-token")
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default();
        if !auth::same_secret(sent, &session.csrf) {
            return Err((
                StatusCode::FORBIDDEN,
                Json(json!({"error": "invalid or missing X-CSRF-Token"})),
            ));
        }
    }
    Ok(session)
}

#[utoipa::path(
    get,
    path = "/api/v1/overview",
    summary = "everything the page shows, and the session's CSRF token",
    responses(
        (status = 200, description = "the snapshot", body = Overview),
        (status = 401, description = "no session: sign in with POST /login", body = ApiError)
    )
)]
async fn api_overview(State(app): State<App>, headers: HeaderMap) -> Response {
    match api_session(&app, &headers, false) {
        Ok(session) => Json(Overview {
            snapshot: app.live.snapshot(),
            csrf: session.csrf,
        })
        .into_response(),
        Err(denied) => denied.into_response(),
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
struct ModeBody {
    #[schema(value_type = ChargingMode)]
    mode: String,
}

#[utoipa::path(
    post,
    path = "/api/v1/charging/mode",
    summary = "set the charging mode, as HA's select does",
    params(("X-CSRF-Token" = String, Header, description = "the session's token, from GET /api/v1/overview")),
    request_body = ModeBody,
    responses(
        (status = 202, description = "sent to the broker", body = Sent),
        (status = 400, description = "not a valid mode, or a body that is not JSON"),
        (status = 401, description = "no session: sign in with POST /login", body = ApiError),
        (status = 403, description = "missing or wrong X-CSRF-Token", body = ApiError),
        (status = 415, description = "the body is not sent as application/json"),
        (status = 422, description = "JSON that is not the documented object"),
        (status = 503, description = "the broker is unreachable")
    )
)]
async fn api_set_mode(
    State(app): State<App>,
    headers: HeaderMap,
    Json(body): Json<ModeBody>,
) -> Response {
    let session = match api_session(&app, &headers, true) {
        Ok(session) => session,
        Err(denied) => return denied.into_response(),
    };
    match send_mode(&app, &body.mode, &session.user).await {
        Ok(()) => (
            StatusCode::ACCEPTED,
            Json(Sent {
                sent: body.mode,
                action_id: None,
            }),
        )
            .into_response(),
        Err(response) => response,
    }
}

#[utoipa::path(
    post,
    path = "/api/v1/actions/{id}/{verb}",
    summary = "approve or reject a remediation action health-monitor proposed",
    params(
        ("X-CSRF-Token" = String, Header, description = "the session's token, from GET /api/v1/overview"),
        ("id" = String, Path, pattern = "^[A-Za-z0-9_-]+$", description = "the action's id"),
        ("verb" = Verb, Path)
    ),
    responses(
        (status = 202, description = "sent to the broker", body = Sent),
        (status = 400, description = "not a valid action id"),
        (status = 401, description = "no session: sign in with POST /login", body = ApiError),
        (status = 403, description = "missing or wrong X-CSRF-Token", body = ApiError),
        (status = 404, description = "the verb is not approve or reject"),
        (status = 503, description = "the broker is unreachable")
    )
)]
async fn api_decide(
    State(app): State<App>,
    headers: HeaderMap,
    Path((id, verb)): Path<(String, String)>,
) -> Response {
    let session = match api_session(&app, &headers, true) {
        Ok(session) => session,
        Err(denied) => return denied.into_response(),
    };
    match send_decision(&app, &id, &verb, &session.user).await {
        Ok(()) => (
            StatusCode::ACCEPTED,
            Json(Sent {
                sent: verb,
                action_id: Some(id),
            }),
        )
            .into_response(),
        Err(response) => response,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The document lists exactly the API routes the router serves (the description
    /// itself is public and not part of it).
    #[test]
    fn the_openapi_document_describes_every_api_route() {
        let source = include_str!("web.rs");
        let mut routed: Vec<&str> = source
            .lines()
            .filter_map(|line| line.trim().strip_prefix(".route(\""))
            .filter_map(|rest| rest.split('"').next())
            .filter(|path| path.starts_with("/api/v1/") && *path != "/api/v1/openapi.json")
            .collect();
        routed.sort_unstable();
        let document = openapi_document();
        let mut described: Vec<&str> = document["paths"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        described.sort_unstable();
        assert_eq!(routed, described);
        std::fs::write(
            std::env::temp_dir().join("dashboard-openapi.json"),
            serde_json::to_string_pretty(&document).unwrap(),
        )
        .unwrap();
        assert_eq!(
            document["paths"]["/api/v1/charging/mode"]["post"]["requestBody"]["content"]
                ["application/json"]["schema"]["$ref"],
            "#/components/schemas/ModeBody"
        );
        assert_eq!(
            document["components"]["schemas"]["ChargingMode"]["enum"],
            json!(view::MODES),
            "the modes the page offers are the modes the API documents"
        );
        // Every reference resolves (utoipa does not collect a path parameter's type).
        let text = document.to_string();
        for reference in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
            let name = reference.split('"').next().unwrap();
            assert!(
                document["components"]["schemas"][name].is_object(),
                "{name} is referenced but not described"
            );
        }
        // Generated from the message types: a field added there is documented here.
        let plan = &document["components"]["schemas"]["Plan"]["properties"];
        assert!(
            plan["shortfall_kwh"].is_object() && plan["trips"].is_object(),
            "{plan}"
        );
    }
}
