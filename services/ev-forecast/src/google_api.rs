//! The calls to Google Calendar: a signed JWT exchanged for an access token (kept
//! until a minute before it expires), then the events of each calendar, page by page.

use chrono::{DateTime, Utc};
use ev_forecast::calendar::{Event, Reading};
use ev_forecast::google::{self, ServiceAccount, TokenAnswer};
use homelab::web::WebClient;
use homelab::Secret;
use std::time::{Duration, Instant};

pub(crate) struct GoogleCalendar {
    account: ServiceAccount,
    api: String,
    web: WebClient,
    token: tokio::sync::Mutex<Option<(Secret, Instant)>>,
}

/// Events read, and the events skipped (named).
pub(crate) type Events = (Vec<Event>, Vec<String>);

impl GoogleCalendar {
    /// Reads the key file; `Ok(None)` when no file is set.
    pub(crate) fn from_settings(
        key_file: &str,
        api: &str,
        web: WebClient,
    ) -> anyhow::Result<Option<Self>> {
        let key_file = key_file.trim();
        if key_file.is_empty() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(key_file)
            .map_err(|error| anyhow::anyhow!("GOOGLE_SERVICE_ACCOUNT_FILE={key_file}: {error}"))?;
        let account = ServiceAccount::parse(&text, key_file)
            .map_err(|error| anyhow::anyhow!("GOOGLE_SERVICE_ACCOUNT_FILE: {error}"))?;
        Ok(Some(Self {
            account,
            api: api.to_string(),
            web,
            token: tokio::sync::Mutex::new(None),
        }))
    }

    pub(crate) fn client_email(&self) -> &str {
        &self.account.client_email
    }

    async fn access_token(&self) -> Result<Secret, String> {
        let mut slot = self.token.lock().await;
        if let Some((token, until)) = slot.as_ref() {
            if Instant::now() < *until {
                return Ok(token.clone());
            }
        }
        let assertion = self.account.assertion(Utc::now())?;
        let body = self
            .web
            .post_form(
                &self.account.token_uri,
                &[
                    ("grant_type", google::GRANT_TYPE),
                    ("assertion", &assertion),
                ],
            )
            .await
            .map_err(|error| {
                format!(
                    "Google refused the service account {} a token: {error}",
                    self.account.client_email
                )
            })?;
        let answer: TokenAnswer = serde_json::from_str(&body)
            .map_err(|error| format!("unreadable token answer: {error}"))?;
        let token = Secret::new(answer.access_token);
        let lifetime = Duration::from_secs(answer.expires_in.saturating_sub(60));
        *slot = Some((token.clone(), Instant::now() + lifetime));
        Ok(token)
    }

    /// Every occurrence starting in `from..to` in `calendar_id`.
    pub(crate) async fn events(
        &self,
        calendar_id: &str,
        reading: Reading,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Events, String> {
        let token = self.access_token().await?;
        let mut events = Vec::new();
        let mut warnings = Vec::new();
        let mut page_token: Option<String> = None;
        for _ in 0..google::MAX_PAGES {
            let url = google::events_url(&self.api, calendar_id, from, to, page_token.as_deref());
            let body = match self.web.get_text_authorized(&url, &token).await {
                Ok(body) => body,
                Err(error) => {
                    if matches!(error.status, Some(401)) {
                        // Revoked or expired early: the next refresh asks for a new one.
                        self.token.lock().await.take();
                    }
                    let hint = if matches!(error.status, Some(403 | 404)) {
                        format!(
                            " (is the calendar shared with {}?)",
                            self.account.client_email
                        )
                    } else {
                        String::new()
                    };
                    return Err(format!("Google calendar {calendar_id}: {error}{hint}"));
                }
            };
            let page = google::parse_events(&body, reading)
                .map_err(|error| format!("Google calendar {calendar_id}: {error}"))?;
            events.extend(page.events);
            warnings.extend(page.warnings);
            match page.next_page {
                Some(next) => page_token = Some(next),
                None => return Ok((events, warnings)),
            }
        }
        warnings.push(format!(
            "Google calendar {calendar_id}: more than {} pages of events; the rest is not read",
            google::MAX_PAGES
        ));
        Ok((events, warnings))
    }
}
