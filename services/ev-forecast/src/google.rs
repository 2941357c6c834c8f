//! Google Calendar through its API with a service account, beside iCal: what the
//! Python home lab used. The pure half: the key file, the signed token request
//! (RFC 7523 JWT bearer grant, as Google documents it for service accounts), the
//! events address and the events answer. The calls live in the service.
//!
//! The calendar must be shared with the service account's e-mail address.

use crate::calendar::{Event, Reading};
use chrono::{DateTime, NaiveDate, SecondsFormat, TimeZone, Utc};
use serde::{Deserialize, Serialize};

/// Read-only access to calendars is all ev-forecast asks for.
pub const SCOPE: &str = "https://www.googleapis.com/auth/calendar.readonly";
/// The grant type of a signed JWT exchanged for an access token.
pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// At most this many pages of 250 events per calendar and refresh.
pub const MAX_PAGES: usize = 10;

/// The fields of a service-account key file (`GOOGLE_SERVICE_ACCOUNT_FILE`) we use.
#[derive(Clone, Deserialize)]
pub struct ServiceAccount {
    pub client_email: String,
    private_key: String,
    #[serde(default)]
    private_key_id: Option<String>,
    pub token_uri: String,
}

impl std::fmt::Debug for ServiceAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceAccount")
            .field("client_email", &self.client_email)
            .field("token_uri", &self.token_uri)
            .field("private_key", &"<redacted>")
            .finish()
    }
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    scope: &'a str,
    aud: &'a str,
    iat: i64,
    exp: i64,
}

impl ServiceAccount {
    /// The key file's text; errors name the file and the field (never the key).
    pub fn parse(text: &str, file: &str) -> Result<Self, String> {
        let value: serde_json::Value = serde_json::from_str(text)
            .map_err(|error| format!("{file} is not a JSON key file: {error}"))?;
        if let Some(kind) = value.get("type").and_then(|t| t.as_str()) {
            if kind != "service_account" {
                return Err(format!(
                    "{file} is a {kind:?} key, not a service account's (create one under IAM → Service accounts → Keys)"
                ));
            }
        }
        for field in ["client_email", "private_key", "token_uri"] {
            if value
                .get(field)
                .and_then(|v| v.as_str())
                .is_none_or(str::is_empty)
            {
                return Err(format!("{file} has no {field}"));
            }
        }
        let account: Self =
            serde_json::from_value(value).map_err(|error| format!("{file}: {error}"))?;
        jsonwebtoken::EncodingKey::from_rsa_pem(account.private_key.as_bytes())
            .map_err(|_| format!("{file}: private_key is not an RSA key in PEM form"))?;
        Ok(account)
    }

    /// The signed request for an access token, valid for an hour from `now`.
    pub fn assertion(&self, now: DateTime<Utc>) -> Result<String, String> {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        header.kid = self.private_key_id.clone();
        let key = jsonwebtoken::EncodingKey::from_rsa_pem(self.private_key.as_bytes())
            .map_err(|_| "private_key is not an RSA key in PEM form".to_string())?;
        let claims = Claims {
            iss: &self.client_email,
            scope: SCOPE,
            aud: &self.token_uri,
            iat: now.timestamp(),
            exp: now.timestamp() + 3600,
        };
        jsonwebtoken::encode(&header, &claims, &key)
            .map_err(|error| format!("cannot sign the token request: {error}"))
    }
}

/// The token endpoint's answer.
#[derive(Debug, Deserialize)]
pub struct TokenAnswer {
    pub access_token: String,
    #[serde(default = "an_hour")]
    pub expires_in: u64,
}

fn an_hour() -> u64 {
    3600
}

/// `GET {api}/calendars/{id}/events`: single occurrences (recurring events expanded
/// by Google) starting in `from..to`, by start time.
pub fn events_url(
    api: &str,
    calendar_id: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    page_token: Option<&str>,
) -> String {
    let mut url = format!(
        "{}/calendars/{}/events?timeMin={}&timeMax={}&singleEvents=true&orderBy=startTime&maxResults=250",
        api.trim_end_matches('/'),
        urlencoding::encode(calendar_id),
        urlencoding::encode(&from.to_rfc3339_opts(SecondsFormat::Secs, true)),
        urlencoding::encode(&to.to_rfc3339_opts(SecondsFormat::Secs, true)),
    );
    if let Some(token) = page_token {
        url.push_str("&pageToken=");
        url.push_str(&urlencoding::encode(token));
    }
    url
}

#[derive(Deserialize)]
struct Page {
    #[serde(default)]
    items: Vec<Item>,
    #[serde(rename = "nextPageToken")]
    next_page_token: Option<String>,
    /// The calendar's own zone, for all-day events.
    #[serde(rename = "timeZone")]
    time_zone: Option<String>,
}

#[derive(Deserialize)]
struct Item {
    #[serde(default)]
    id: String,
    #[serde(rename = "iCalUID")]
    ical_uid: Option<String>,
    #[serde(default)]
    status: String,
    #[serde(default)]
    summary: String,
    location: Option<String>,
    start: Option<When>,
}

#[derive(Deserialize)]
struct When {
    #[serde(rename = "dateTime")]
    date_time: Option<String>,
    date: Option<String>,
}

/// One page of events: what is read, what was skipped (named), and the next page.
#[derive(Debug, Default)]
pub struct EventsPage {
    pub events: Vec<Event>,
    pub warnings: Vec<String>,
    pub next_page: Option<String>,
}

/// Reads one events answer. All-day events leave at `reading.all_day_departure` in the
/// calendar's zone; cancelled ones are dropped.
pub fn parse_events(body: &str, reading: Reading) -> Result<EventsPage, String> {
    let page: Page =
        serde_json::from_str(body).map_err(|error| format!("not an events answer: {error}"))?;
    let zone = page
        .time_zone
        .as_deref()
        .and_then(|name| name.parse::<chrono_tz::Tz>().ok())
        .unwrap_or(reading.zone);
    let mut out = EventsPage {
        next_page: page.next_page_token,
        ..EventsPage::default()
    };
    for item in page.items {
        if item.status == "cancelled" {
            continue;
        }
        let uid = item.ical_uid.clone().unwrap_or(item.id.clone());
        let start = match item.start.as_ref().map(|w| (&w.date_time, &w.date)) {
            Some((Some(at), _)) => DateTime::parse_from_rfc3339(at)
                .map(|at| (at.with_timezone(&Utc), false))
                .map_err(|error| format!("start {at:?}: {error}")),
            Some((None, Some(day))) => NaiveDate::parse_from_str(day, "%Y-%m-%d")
                .map_err(|error| format!("date {day:?}: {error}"))
                .and_then(|day| {
                    zone.from_local_datetime(&day.and_time(reading.all_day_departure))
                        .earliest()
                        .map(|at| (at.with_timezone(&Utc), true))
                        .ok_or_else(|| {
                            format!(
                                "{day} {} does not exist in {zone}",
                                reading.all_day_departure
                            )
                        })
                }),
            _ => Err("no start".to_string()),
        };
        match start {
            Ok((start, all_day)) => out.events.push(Event {
                uid,
                summary: item.summary,
                location: item.location.filter(|l| !l.trim().is_empty()),
                start,
                all_day,
            }),
            Err(error) => out.warnings.push(format!(
                "event {:?} (UID {uid}) skipped: {error}",
                item.summary
            )),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveTime;

    fn reading() -> Reading {
        Reading {
            zone: chrono_tz::UTC,
            all_day_departure: NaiveTime::from_hms_opt(8, 0, 0).unwrap(),
        }
    }

    #[test]
    fn an_events_answer_reads_times_all_day_events_and_skips_the_rest_by_name() {
        let body = r#"{
          "kind": "calendar#events",
          "timeZone": "Europe/Berlin",
          "nextPageToken": "page-2",
          "items": [
            {"id": "a1", "iCalUID": "a1@google.com", "status": "confirmed", "summary": "Office",
             "location": "ACME Office, Münster",
             "start": {"dateTime": "2026-12-01T07:30:00+01:00", "timeZone": "Europe/Berlin"}},
            {"id": "b2", "status": "confirmed", "summary": "Weekend at Grandma's",
             "location": "Bremen", "start": {"date": "2026-12-05"}},
            {"id": "c3", "status": "cancelled"},
            {"id": "d4", "status": "confirmed", "summary": "Typed by hand",
             "start": {"dateTime": "tomorrow"}},
            {"id": "e5", "status": "confirmed", "summary": "Call", "location": " ",
             "start": {"dateTime": "2026-12-02T10:00:00Z"}}
          ]
        }"#;
        let page = parse_events(body, reading()).unwrap();
        assert_eq!(page.next_page.as_deref(), Some("page-2"));
        let starts: Vec<(String, String, bool)> = page
            .events
            .iter()
            .map(|e| (e.uid.clone(), e.start.to_rfc3339(), e.all_day))
            .collect();
        assert_eq!(
            starts,
            vec![
                (
                    "a1@google.com".into(),
                    "2026-12-01T06:30:00+00:00".into(),
                    false
                ),
                // 08:00 in the calendar's zone (Berlin), not in UTC.
                ("b2".into(), "2026-12-05T07:00:00+00:00".into(), true),
                ("e5".into(), "2026-12-02T10:00:00+00:00".into(), false),
            ]
        );
        assert_eq!(page.events[2].location, None, "a blank place is no place");
        assert_eq!(page.warnings.len(), 1);
        assert!(
            page.warnings[0]
                .starts_with("event \"Typed by hand\" (UID d4) skipped: start \"tomorrow\""),
            "{:?}",
            page.warnings
        );
        assert!(parse_events("<html>", reading())
            .unwrap_err()
            .contains("not an events answer"));
    }

    #[test]
    fn the_events_address_escapes_the_calendar_id_and_pages() {
        let from = Utc.with_ymd_and_hms(2026, 11, 30, 18, 0, 0).unwrap();
        let to = Utc.with_ymd_and_hms(2026, 12, 2, 18, 0, 0).unwrap();
        assert_eq!(
            events_url("http://127.0.0.1:9/calendar/v3/", "family@group.calendar.google.com", from, to, Some("p 2")),
            "http://127.0.0.1:9/calendar/v3/calendars/family%40group.calendar.google.com/events?timeMin=2026-11-30T18%3A00%3A00Z&timeMax=2026-12-02T18%3A00%3A00Z&singleEvents=true&orderBy=startTime&maxResults=250&pageToken=p%202"
        );
    }

    #[test]
    fn key_files_that_cannot_work_are_refused_by_name_without_the_key() {
        let file = "/run/secrets/google.json";
        assert!(ServiceAccount::parse("{", file)
            .unwrap_err()
            .starts_with("/run/secrets/google.json is not a JSON key file"));
        assert_eq!(
            ServiceAccount::parse(r#"{"type":"authorized_user","client_email":"x"}"#, file)
                .unwrap_err(),
            "/run/secrets/google.json is a \"authorized_user\" key, not a service account's (create one under IAM → Service accounts → Keys)"
        );
        assert_eq!(
            ServiceAccount::parse(
                r#"{"type":"service_account","client_email":"a@b","private_key":"k","token_uri":""}"#,
                file
            )
            .unwrap_err(),
            "/run/secrets/google.json has no token_uri"
        );
        let not_rsa = ServiceAccount::parse(
            r#"{"type":"service_account","client_email":"a@b","private_key":"secret-key-material-1234","token_uri":"http://x"}"#,
            file,
        )
        .unwrap_err();
        assert_eq!(
            not_rsa,
            "/run/secrets/google.json: private_key is not an RSA key in PEM form"
        );
        assert!(!not_rsa.contains("secret-key-material"));
    }
}
