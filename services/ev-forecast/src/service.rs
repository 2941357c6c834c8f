//! The I/O around the plan: calendars and Nominatim in, the plan out on MQTT and as
//! HA entities.

use crate::google_api::GoogleCalendar;
use chrono::{DateTime, Duration as Span, NaiveTime, Utc};
use ev_forecast::calendar::{self, Event, Reading};
use ev_forecast::geocode::{self, DistanceTable, GeocodeCache, Place};
use ev_forecast::places::{self, Places};
use ev_forecast::plan::{self, DistanceSource, Plan, PlanConfig, Trip};
use homelab::diagnose::{Check, Step};
use homelab::discovery::{self, Entity};
use homelab::messages::ev_forecast::{Clarification, CLARIFICATION_TOPIC};
use homelab::messages::orchestrator::{FactKind, KnowledgeUpdate, KNOWLEDGE_UPDATE_TOPIC};
use homelab::web::WebClient;
use homelab::{Context, Health, Message, QoS, Service, Settings, StateStore};
use serde::Deserialize;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub(crate) struct EvForecastSettings {
    home_latitude: f64,
    home_longitude: f64,
    ev_forecast_ical_urls: String,
    /// A service account's JSON key; the calendars must be shared with its e-mail.
    google_service_account_file: String,
    /// Comma-separated calendar ids (Calendar settings → "Integrate calendar").
    google_calendar_ids: String,
    google_calendar_api_url: String,
    ev_forecast_nominatim_url: String,
    ev_forecast_distances: String,
    ev_forecast_road_factor: f64,
    ev_forecast_consumption_kwh_per_100km: f64,
    ev_forecast_winter_factor: f64,
    ev_forecast_reserve_kwh: f64,
    ev_forecast_battery_kwh: f64,
    /// One way, for a place nobody knows yet: high, so that a trip is never under-planned.
    ev_forecast_unknown_distance_km: f64,
    ev_forecast_charge_power_kw: f64,
    ev_forecast_group_hours: f64,
    ev_forecast_soc_entity: String,
    ev_forecast_horizon_hours: i64,
    ev_forecast_all_day_departure: String,
    ev_forecast_refresh_seconds: u64,
}

impl Default for EvForecastSettings {
    fn default() -> Self {
        let plan = PlanConfig::default();
        Self {
            home_latitude: 0.0,
            home_longitude: 0.0,
            ev_forecast_ical_urls: String::new(),
            google_service_account_file: String::new(),
            google_calendar_ids: String::new(),
            google_calendar_api_url: "https://www.googleapis.com/calendar/v3".into(),
            ev_forecast_nominatim_url: "https://nominatim.openstreetmap.org".into(),
            ev_forecast_distances: String::new(),
            ev_forecast_road_factor: 1.3,
            ev_forecast_consumption_kwh_per_100km: plan.consumption_kwh_per_100km,
            ev_forecast_winter_factor: plan.winter_factor,
            ev_forecast_reserve_kwh: plan.reserve_kwh,
            ev_forecast_battery_kwh: plan.battery_kwh,
            ev_forecast_unknown_distance_km: 100.0,
            ev_forecast_charge_power_kw: plan.charge_power_kw,
            ev_forecast_group_hours: plan.group_hours,
            ev_forecast_soc_entity: String::new(),
            ev_forecast_horizon_hours: 48,
            ev_forecast_all_day_departure: "08:00".into(),
            ev_forecast_refresh_seconds: 900,
        }
    }
}

impl EvForecastSettings {
    fn calendars(&self) -> Vec<String> {
        self.ev_forecast_ical_urls
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            // webcal:// is how calendar apps link a subscription; it is plain HTTPS.
            .map(|s| {
                s.strip_prefix("webcal://")
                    .map_or(s.to_string(), |rest| format!("https://{rest}"))
            })
            .collect()
    }

    fn google_calendars(&self) -> Vec<String> {
        self.google_calendar_ids
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect()
    }

    /// The Calendar API client, when a key file is set; an id list without a key
    /// file is an error, not a silently empty plan.
    fn google(&self, web: WebClient) -> anyhow::Result<Option<GoogleCalendar>> {
        let google = GoogleCalendar::from_settings(
            &self.google_service_account_file,
            &self.google_calendar_api_url,
            web,
        )?;
        if google.is_none() && !self.google_calendars().is_empty() {
            anyhow::bail!("GOOGLE_CALENDAR_IDS is set but GOOGLE_SERVICE_ACCOUNT_FILE is not");
        }
        Ok(google)
    }

    fn plan_config(&self) -> PlanConfig {
        PlanConfig {
            consumption_kwh_per_100km: self.ev_forecast_consumption_kwh_per_100km,
            winter_factor: self.ev_forecast_winter_factor,
            reserve_kwh: self.ev_forecast_reserve_kwh,
            battery_kwh: self.ev_forecast_battery_kwh,
            charge_power_kw: self.ev_forecast_charge_power_kw,
            group_hours: self.ev_forecast_group_hours,
        }
    }
}

async fn read_calendar(web: &WebClient, source: &str) -> anyhow::Result<String> {
    if source.starts_with("http://") || source.starts_with("https://") {
        Ok(web.get_text(source).await?)
    } else {
        tokio::fs::read_to_string(source)
            .await
            .map_err(|error| anyhow::anyhow!("calendar file {source}: {error}"))
    }
}

#[derive(Debug, Deserialize)]
struct Command {
    command: String,
}

/// Nominatim through the cache on disk, so that every address is asked for once.
struct Geocoder {
    web: WebClient,
    base_url: String,
    store: StateStore<GeocodeCache>,
    cache: Mutex<GeocodeCache>,
}

impl Geocoder {
    fn new(web: WebClient, base_url: &str, data_dir: &std::path::Path) -> Self {
        let store = StateStore::at(data_dir.join("geocode-cache.json"));
        let cache = store.load().state;
        Self {
            web,
            base_url: base_url.to_string(),
            store,
            cache: Mutex::new(cache),
        }
    }

    /// `Ok(None)`: Nominatim knows no such place (remembered). `Err`: it could not be
    /// asked (not remembered, asked again next time).
    async fn locate(&self, destination: &str) -> Result<Option<Place>, String> {
        if let Some(known) = self.cache.lock().expect("poisoned").get(destination) {
            return Ok(known);
        }
        let url = geocode::nominatim_url(&self.base_url, destination);
        let answer = match self.web.get_text(&url).await {
            Ok(body) => geocode::parse_nominatim(&body),
            Err(error) => Err(error.to_string()),
        };
        // Nominatim's usage policy: at most one request per second.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let place = answer?;
        let snapshot = {
            let mut cache = self.cache.lock().expect("poisoned");
            cache.insert(destination, place);
            self.store.snapshot(&cache)
        };
        if let Err(error) = async { snapshot?.write().await }.await {
            tracing::warn!(error = %error, "geocode_cache_save_failed");
        }
        Ok(place)
    }
}

pub(crate) struct EvForecastService {
    settings: EvForecastSettings,
    home: Place,
    table: DistanceTable,
    reading: Reading,
    web: WebClient,
    geocoder: Geocoder,
    places_store: StateStore<Places>,
    places: Mutex<Places>,
    /// Places counted at the assumed distance in the last plan, for a bare "120" answer.
    open_questions: Mutex<Vec<String>>,
    /// Skipped-event warnings already logged: each is logged once, not at every refresh.
    warned: Mutex<HashSet<String>>,
    /// The last text of each calendar that could be read, kept when a fetch fails.
    calendars: Mutex<Vec<Option<String>>>,
    google: Option<GoogleCalendar>,
    /// The last events of each Google calendar that could be read.
    google_events: Mutex<Vec<Option<Vec<Event>>>>,
    last: Mutex<Option<Plan>>,
    calendar_errors: Mutex<Vec<String>>,
}

fn entities() -> Vec<Entity> {
    vec![
        Entity::sensor("energy_needed", "EV energy needed")
            .unit("kWh")
            .device_class("energy")
            .icon("mdi:car-electric"),
        Entity::sensor("deadline", "EV next departure").device_class("timestamp"),
        Entity::sensor("urgency", "EV charging urgency"),
        Entity::sensor("next_trip", "EV next trip").icon("mdi:map-marker-distance"),
        Entity::sensor("warning", "EV trip warning").icon("mdi:car-battery"),
        Entity::sensor("clarification", "EV place to clarify").icon("mdi:map-marker-question"),
        Entity::text("place_distance", "EV place distance answer (place=km)", 100)
            .icon("mdi:map-marker-distance"),
    ]
}

impl Service for EvForecastService {
    const NAME: &'static str = "ev-forecast";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const ABOUT: &'static str =
        "Reads upcoming trips from calendars and publishes the energy the car needs by when.";
    type Settings = EvForecastSettings;

    /// Only the car's SoC comes from HA; the plan itself goes out over MQTT.
    fn uses_home_assistant(settings: &Settings<EvForecastSettings>) -> bool {
        !settings.service.ev_forecast_soc_entity.trim().is_empty()
    }

    fn new(ctx: &Context<EvForecastSettings>) -> anyhow::Result<Self> {
        let settings = ctx.settings().clone();
        if settings.home_latitude == 0.0 && settings.home_longitude == 0.0 {
            anyhow::bail!(
                "HOME_LATITUDE and HOME_LONGITUDE are not set (trip distances start at home)"
            );
        }
        let table = DistanceTable::parse(&settings.ev_forecast_distances)
            .map_err(|error| anyhow::anyhow!("EV_FORECAST_DISTANCES: {error}"))?;
        let zone = ctx.common().time_zone()?;
        let departure =
            NaiveTime::parse_from_str(settings.ev_forecast_all_day_departure.trim(), "%H:%M")
                .map_err(|_| {
                    anyhow::anyhow!(
                        "EV_FORECAST_ALL_DAY_DEPARTURE={:?} is not HH:MM",
                        settings.ev_forecast_all_day_departure
                    )
                })?;
        for (name, value) in [
            (
                "EV_FORECAST_CONSUMPTION_KWH_PER_100KM",
                settings.ev_forecast_consumption_kwh_per_100km,
            ),
            ("EV_FORECAST_BATTERY_KWH", settings.ev_forecast_battery_kwh),
            (
                "EV_FORECAST_UNKNOWN_DISTANCE_KM",
                settings.ev_forecast_unknown_distance_km,
            ),
            (
                "EV_FORECAST_CHARGE_POWER_KW",
                settings.ev_forecast_charge_power_kw,
            ),
        ] {
            if value.is_nan() || value <= 0.0 {
                anyhow::bail!("{name}={value} must be above 0");
            }
        }
        let data_dir = &ctx.common().data_dir;
        let places_store = StateStore::at(data_dir.join("places.json"));
        let places = places_store.load().state;
        let calendars = settings.calendars().len();
        let web = WebClient::new(concat!(
            "homelab-ev-forecast/",
            env!("CARGO_PKG_VERSION"),
            " (home automation; one query per new address)"
        ))
        .until(ctx.shutdown().clone());
        let google = settings.google(web.clone())?;
        if google.is_some() && settings.google_calendars().is_empty() {
            tracing::warn!("google_service_account_without_calendar_ids");
        }
        Ok(Self {
            home: Place {
                latitude: settings.home_latitude,
                longitude: settings.home_longitude,
            },
            table,
            reading: Reading {
                zone,
                all_day_departure: departure,
            },
            geocoder: Geocoder::new(web.clone(), &settings.ev_forecast_nominatim_url, data_dir),
            web,
            places_store,
            places: Mutex::new(places),
            open_questions: Mutex::new(Vec::new()),
            warned: Mutex::new(HashSet::new()),
            calendars: Mutex::new(vec![None; calendars]),
            google,
            google_events: Mutex::new(vec![None; settings.google_calendars().len()]),
            last: Mutex::new(None),
            calendar_errors: Mutex::new(Vec::new()),
            settings,
        })
    }

    async fn run(self: Arc<Self>, ctx: Context<EvForecastSettings>) -> anyhow::Result<()> {
        discovery::announce(ctx.mqtt(), Self::VERSION, &entities()).await?;
        let (refresh_now, mut requests) = mpsc::channel::<()>(4);
        let topic = format!("homelab/orchestrator/command/{}", Self::NAME);
        let refresh_on_command = refresh_now.clone();
        ctx.subscribe(&topic, move |message: Message<Command>| {
            let refresh_now = refresh_on_command.clone();
            async move {
                if message.payload.command != "refresh" {
                    anyhow::bail!(
                        "unknown command {:?}; expected refresh",
                        message.payload.command
                    );
                }
                refresh_now
                    .send(())
                    .await
                    .map_err(|_| anyhow::anyhow!("the service is stopping"))?;
                Ok(())
            }
        })
        .await?;
        // A person's answer about a place: from the orchestrator (Telegram) as a
        // confirmed fact, or typed into HA's text box.
        let service = self.clone();
        let refresh_on_fact = refresh_now.clone();
        ctx.subscribe(
            KNOWLEDGE_UPDATE_TOPIC,
            move |message: Message<KnowledgeUpdate>| {
                let service = service.clone();
                let refresh_now = refresh_on_fact.clone();
                async move {
                    let fact = message.payload;
                    if !matches!(fact.kind, FactKind::Destination | FactKind::Correction) {
                        return Ok(());
                    }
                    let Some(km) = fact.distance_km else {
                        if fact.kind == FactKind::Destination {
                            anyhow::bail!(
                                "destination fact about {:?} has no distance_km",
                                fact.subject
                            );
                        }
                        return Ok(());
                    };
                    if !fact.confirmed {
                        // An inferred fact is a guess; only a person's word replaces ours.
                        tracing::info!(place = %fact.subject, km, "unconfirmed_place_fact_ignored");
                        return Ok(());
                    }
                    service
                        .learn(
                            &fact.subject,
                            km,
                            &format!("orchestrator: {}", fact.statement),
                        )
                        .await?;
                    let _ = refresh_now.send(()).await;
                    Ok(())
                }
            },
        )
        .await?;
        let service = self.clone();
        let mqtt = ctx.mqtt().clone();
        ctx.mqtt()
            .subscribe_text(
                &discovery::command_topic(Self::NAME, "place_distance"),
                move |message: Message<String>| {
                    let service = service.clone();
                    let refresh_now = refresh_now.clone();
                    let mqtt = mqtt.clone();
                    async move {
                        let open = service.open_questions.lock().expect("poisoned").clone();
                        let (place, km) = places::parse_answer(&message.payload, &open)
                            .map_err(anyhow::Error::msg)?;
                        service.learn(&place, km, "home assistant").await?;
                        // The box shows what was understood.
                        discovery::publish_state(
                            &mqtt,
                            "place_distance",
                            format!("{place}={km} km"),
                        )
                        .await?;
                        let _ = refresh_now.send(()).await;
                        Ok(())
                    }
                },
            )
            .await?;
        if self.settings.calendars().is_empty() {
            tracing::warn!("no_calendar_configured_empty_plan");
        }
        tracing::info!(
            calendars = self.settings.calendars().len(),
            "service_started"
        );
        let mut refresh = tokio::time::interval(Duration::from_secs(
            self.settings.ev_forecast_refresh_seconds.max(10),
        ));
        loop {
            tokio::select! {
                () = ctx.shutdown().cancelled() => return Ok(()),
                _ = refresh.tick() => {}
                _ = requests.recv() => {}
            }
            // One trace per plan: smart-ev-charging continues it when it acts on the plan.
            let trace_id = homelab::envelope::new_trace_id();
            if let Err(error) = homelab::envelope::with_trace_id(trace_id, self.refresh(&ctx)).await
            {
                tracing::error!(error = format!("{error:#}"), "plan_refresh_failed");
            }
        }
    }

    fn health(&self) -> Health {
        let errors = self.calendar_errors.lock().expect("poisoned").clone();
        let last = self.last.lock().expect("poisoned").clone();
        let health = if errors.is_empty() {
            Health::online()
        } else {
            Health::degraded(errors.join("; "))
        };
        health
            .with(
                "energy_needed_kwh",
                last.as_ref().map(|p| p.energy_needed_kwh),
            )
            .with("trips", last.as_ref().map_or(0, |p| p.trips.len()))
            .with(
                "open_questions",
                self.open_questions.lock().expect("poisoned").len(),
            )
    }

    fn diagnose_steps(settings: &Settings<EvForecastSettings>) -> Vec<Step> {
        let own = settings.service.clone();
        let zone = settings.common.time_zone();
        let data_dir = settings.common.data_dir.clone();
        vec![Step::new("calendar", async move {
            match zone {
                Ok(zone) => check_calendars(own, zone, data_dir).await,
                Err(error) => Check::fail(format!("{error:#}")),
            }
        })]
    }
}

/// At most this many new places are looked up per `diagnose` (one a second).
const DIAGNOSE_GEOCODE_LIMIT: usize = 5;

/// `diagnose --step calendar`: reads and parses every calendar as the service does,
/// and resolves every place in the horizon. WARN on a skipped event or a place that
/// would be counted at the assumed distance; FAIL when a calendar cannot be read.
async fn check_calendars(
    own: EvForecastSettings,
    zone: chrono_tz::Tz,
    data_dir: std::path::PathBuf,
) -> Check {
    let calendars = own.calendars();
    let google_ids = own.google_calendars();
    if calendars.is_empty() && google_ids.is_empty() {
        return Check::warn(
            "EV_FORECAST_ICAL_URLS and GOOGLE_CALENDAR_IDS are empty: the plan stays empty",
        );
    }
    let Ok(departure) =
        NaiveTime::parse_from_str(own.ev_forecast_all_day_departure.trim(), "%H:%M")
    else {
        return Check::fail(format!(
            "EV_FORECAST_ALL_DAY_DEPARTURE={:?} is not HH:MM",
            own.ev_forecast_all_day_departure
        ));
    };
    let table = match DistanceTable::parse(&own.ev_forecast_distances) {
        Ok(table) => table,
        Err(error) => return Check::fail(format!("EV_FORECAST_DISTANCES: {error}")),
    };
    let web = WebClient::with_retry(
        "homelab-ev-forecast-diagnose",
        homelab::RetryPolicy {
            max_attempts: 1,
            ..Default::default()
        },
    );
    let reading = Reading {
        zone,
        all_day_departure: departure,
    };
    let now = Utc::now();
    let hours = own.ev_forecast_horizon_hours.max(1);
    let mut events = Vec::new();
    let mut skipped = Vec::new();
    for (index, source) in calendars.iter().enumerate() {
        match read_calendar(&web, source).await {
            Ok(text) => {
                let parsed = calendar::parse(&text, reading, now, now + Span::hours(hours));
                events.extend(parsed.events);
                skipped.extend(parsed.warnings);
            }
            Err(error) => return Check::fail(format!("calendar {}: {error:#}", index + 1)),
        }
    }
    let mut google_account = String::new();
    match own.google(web.clone()) {
        Err(error) => return Check::fail(format!("{error:#}")),
        Ok(None) => {}
        Ok(Some(google)) => {
            google_account = format!(" (Google as {})", google.client_email());
            for id in &google_ids {
                match google
                    .events(id, reading, now, now + Span::hours(hours))
                    .await
                {
                    Ok((found, warnings)) => {
                        events.extend(found);
                        skipped.extend(warnings);
                    }
                    Err(error) => return Check::fail(error),
                }
            }
        }
    }
    let places = StateStore::<Places>::at(data_dir.join("places.json"))
        .load()
        .state;
    let geocoder = Geocoder::new(web, &own.ev_forecast_nominatim_url, &data_dir);
    let mut unresolved: Vec<String> = Vec::new();
    let mut seen = HashSet::new();
    let mut looked_up = 0;
    for event in &events {
        let Some(place) = event.location.as_deref() else {
            continue;
        };
        if !seen.insert(GeocodeCache::key(place))
            || places.lookup(place, &event.summary).is_some()
            || table.lookup(Some(place), &event.summary).is_some()
        {
            continue;
        }
        let cached = geocoder.cache.lock().expect("poisoned").get(place);
        let found = match cached {
            Some(answer) => Ok(answer),
            None if looked_up < DIAGNOSE_GEOCODE_LIMIT => {
                looked_up += 1;
                geocoder.locate(place).await
            }
            None => Err("not looked up (too many new places for one diagnose)".into()),
        };
        match found {
            Ok(Some(_)) => {}
            Ok(None) => unresolved.push(format!("{place:?} ({}): not found", event.summary)),
            Err(error) => unresolved.push(format!("{place:?} ({}): {error}", event.summary)),
        }
    }
    let mut detail = format!(
        "{} calendar(s){google_account}, {} event(s) in the next {hours} h",
        calendars.len() + google_ids.len(),
        events.len()
    );
    if !skipped.is_empty() {
        detail.push_str(&format!("; skipped: {}", skipped.join("; ")));
    }
    if !unresolved.is_empty() {
        detail.push_str(&format!(
            "; counted as {:.0} km until someone answers: {}",
            own.ev_forecast_unknown_distance_km,
            unresolved.join("; ")
        ));
    }
    if skipped.is_empty() && unresolved.is_empty() {
        Check::pass(detail)
    } else {
        Check::warn(detail)
    }
}

impl EvForecastService {
    /// The trips in the horizon, and a question for each place counted at the
    /// assumed distance.
    async fn trips(&self, now: DateTime<Utc>) -> (Vec<Trip>, Vec<Clarification>) {
        let sources = self.settings.calendars();
        let mut errors = Vec::new();
        for (index, source) in sources.iter().enumerate() {
            match read_calendar(&self.web, source).await {
                Ok(text) => self.calendars.lock().expect("poisoned")[index] = Some(text),
                Err(error) => {
                    tracing::warn!(
                        calendar = index + 1,
                        error = format!("{error:#}"),
                        "calendar_fetch_failed_keeping_last"
                    );
                    errors.push(format!("calendar {}: {error:#}", index + 1));
                }
            }
        }
        let until = now + Span::hours(self.settings.ev_forecast_horizon_hours.max(1));
        let texts: Vec<String> = self
            .calendars
            .lock()
            .expect("poisoned")
            .iter()
            .flatten()
            .cloned()
            .collect();
        let mut events = Vec::new();
        for text in texts {
            let parsed = calendar::parse(&text, self.reading, now, until);
            self.log_skipped(parsed.warnings);
            events.extend(parsed.events);
        }
        events.extend(self.google_events(now, until, &mut errors).await);
        *self.calendar_errors.lock().expect("poisoned") = errors;
        events.sort_by_key(|event| event.start);
        let config = self.settings.plan_config();
        let mut trips = Vec::new();
        let mut questions: Vec<Clarification> = Vec::new();
        for event in events {
            let Some(destination) = event.location.clone() else {
                continue;
            };
            let (km, source) = self.distance(&destination, &event.summary).await;
            let asked = questions
                .iter()
                .any(|q| GeocodeCache::key(&q.place) == GeocodeCache::key(&destination));
            if source == DistanceSource::Assumed && !asked {
                questions.push(self.question(&destination, &event.summary, event.start));
            }
            trips.push(Trip {
                energy_kwh: (plan::trip_energy_kwh(km, event.start, &config) * 100.0).round()
                    / 100.0,
                summary: event.summary,
                destination: Some(destination),
                start: event.start,
                distance_km: Some((km * 10.0).round() / 10.0),
                distance_source: source,
                fits_one_charge: true,
                shortfall_kwh: 0.0,
            });
        }
        (trips, questions)
    }

    /// Each skipped event is logged once, not at every refresh.
    fn log_skipped(&self, warnings: Vec<String>) {
        for warning in warnings {
            if self
                .warned
                .lock()
                .expect("poisoned")
                .insert(warning.clone())
            {
                tracing::warn!(warning = %warning, "calendar_event_skipped");
            }
        }
    }

    /// The events of every Google calendar; a calendar that cannot be read keeps its
    /// last events and adds to `errors`.
    async fn google_events(
        &self,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        errors: &mut Vec<String>,
    ) -> Vec<Event> {
        let Some(google) = &self.google else {
            return Vec::new();
        };
        for (index, id) in self.settings.google_calendars().iter().enumerate() {
            match google.events(id, self.reading, now, until).await {
                Ok((events, warnings)) => {
                    self.log_skipped(warnings);
                    self.google_events.lock().expect("poisoned")[index] = Some(events);
                }
                Err(error) => {
                    tracing::warn!(calendar_id = %id, error = %error, "google_calendar_failed_keeping_last");
                    errors.push(error);
                }
            }
        }
        self.google_events
            .lock()
            .expect("poisoned")
            .iter()
            .flatten()
            .flatten()
            .filter(|event| event.start > now)
            .cloned()
            .collect()
    }

    fn question(&self, place: &str, summary: &str, start: DateTime<Utc>) -> Clarification {
        let assumed_km = self.settings.ev_forecast_unknown_distance_km;
        let when = start
            .with_timezone(&self.reading.zone)
            .format("%a %d %b %H:%M");
        Clarification {
            place: place.to_string(),
            summary: summary.to_string(),
            start,
            assumed_km,
            question: format!(
                "How far is {place:?} one way ({summary}, {when})? I found it nowhere and count {assumed_km:.0} km until you tell me."
            ),
        }
    }

    /// A person's answer first, then the table, then Nominatim; a place found nowhere
    /// counts at `EV_FORECAST_UNKNOWN_DISTANCE_KM`, never 0.
    async fn distance(&self, destination: &str, summary: &str) -> (f64, DistanceSource) {
        if let Some(km) = self
            .places
            .lock()
            .expect("poisoned")
            .lookup(destination, summary)
        {
            return (km, DistanceSource::Confirmed);
        }
        if let Some(km) = self.table.lookup(Some(destination), summary) {
            return (km, DistanceSource::Table);
        }
        match self.geocoder.locate(destination).await {
            Ok(Some(place)) => {
                return (
                    geocode::haversine_km(self.home, place) * self.settings.ev_forecast_road_factor,
                    DistanceSource::Geocoded,
                )
            }
            Ok(None) => tracing::warn!(destination, "destination_not_found"),
            Err(error) => tracing::warn!(destination, error = %error, "geocoding_failed"),
        }
        (
            self.settings.ev_forecast_unknown_distance_km,
            DistanceSource::Assumed,
        )
    }

    /// Keeps a person's answer about a place (persisted) and closes its question.
    async fn learn(&self, place: &str, km: f64, source: &str) -> anyhow::Result<()> {
        let snapshot = {
            let mut places = self.places.lock().expect("poisoned");
            places
                .confirm(place, km, Utc::now(), source)
                .map_err(anyhow::Error::msg)?;
            self.places_store.snapshot(&places)
        };
        snapshot?.write().await?;
        tracing::info!(place, km, source, "place_distance_confirmed");
        Ok(())
    }

    async fn ev_soc(&self, ctx: &Context<EvForecastSettings>) -> Option<f64> {
        let entity = &self.settings.ev_forecast_soc_entity;
        if entity.is_empty() {
            return None;
        }
        match ctx.home_assistant().read(entity).await {
            Ok(reading) => Some(reading.value),
            Err(error) => {
                tracing::warn!(entity_id = %entity, error = %error, "ev_soc_unavailable");
                None
            }
        }
    }

    async fn refresh(&self, ctx: &Context<EvForecastSettings>) -> anyhow::Result<()> {
        let now = Utc::now();
        let (trips, questions) = self.trips(now).await;
        let soc = self.ev_soc(ctx).await;
        let plan = plan::make_plan(trips, soc, now, &self.settings.plan_config());
        tracing::info!(
            energy_needed_kwh = plan.energy_needed_kwh,
            deadline = plan.deadline.map(|d| d.to_rfc3339()),
            urgency = plan.urgency.as_str(),
            trips = plan.trips.len(),
            "plan_published"
        );
        // Retained: smart-ev-charging gets the current plan even when it starts later.
        ctx.mqtt()
            .publish_json(
                homelab::messages::ev_forecast::PLAN_TOPIC,
                &plan,
                QoS::AtLeastOnce,
                true,
            )
            .await?;
        let mqtt = ctx.mqtt();
        discovery::publish_state(mqtt, "energy_needed", plan.energy_needed_kwh).await?;
        discovery::publish_state(
            mqtt,
            "deadline",
            plan.deadline.map_or("unknown".into(), |d| d.to_rfc3339()),
        )
        .await?;
        discovery::publish_state(mqtt, "urgency", plan.urgency.as_str()).await?;
        let next = plan.trips.first().map_or("none".to_string(), |t| {
            let assumed = if t.distance_source == DistanceSource::Assumed {
                ", assumed"
            } else {
                ""
            };
            format!(
                "{} ({:.0} km{assumed})",
                t.summary,
                t.distance_km.unwrap_or_default()
            )
        });
        discovery::publish_state(mqtt, "next_trip", next).await?;
        discovery::publish_state(mqtt, "warning", plan.warning.as_deref().unwrap_or("none"))
            .await?;
        // Said once per new warning, not at every refresh: the orchestrator tells a person.
        let said_before = self
            .last
            .lock()
            .expect("poisoned")
            .as_ref()
            .is_some_and(|last| last.warning == plan.warning);
        if let (Some(text), false) = (&plan.warning, said_before) {
            tracing::warn!(shortfall_kwh = plan.shortfall_kwh, warning = %text, "trip_beyond_one_charge");
            let alert = homelab::messages::ev_forecast::Alert {
                text: text.clone(),
                shortfall_kwh: plan.shortfall_kwh,
                deadline: plan.deadline,
            };
            mqtt.publish_json(
                homelab::messages::ev_forecast::ALERT_TOPIC,
                &alert,
                QoS::AtLeastOnce,
                false,
            )
            .await?;
        }
        *self.last.lock().expect("poisoned") = Some(plan);
        self.ask(mqtt, &questions, now).await?;
        ctx.touch_health();
        Ok(())
    }

    /// Each open question goes out once a day while trips go there; HA shows them all.
    async fn ask(
        &self,
        mqtt: &homelab::Mqtt,
        questions: &[Clarification],
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        *self.open_questions.lock().expect("poisoned") =
            questions.iter().map(|q| q.place.clone()).collect();
        let shown = if questions.is_empty() {
            "none".to_string()
        } else {
            let all: Vec<&str> = questions.iter().map(|q| q.question.as_str()).collect();
            // HA keeps at most 255 characters of a state.
            all.join(" | ").chars().take(255).collect()
        };
        discovery::publish_state(mqtt, "clarification", shown).await?;
        let (due, snapshot) = {
            let mut places = self.places.lock().expect("poisoned");
            let due: Vec<&Clarification> = questions
                .iter()
                .filter(|q| places.ask_now(&q.place, now))
                .collect();
            let snapshot = (!due.is_empty()).then(|| self.places_store.snapshot(&places));
            (due, snapshot)
        };
        for question in due {
            tracing::info!(
                place = %question.place,
                assumed_km = question.assumed_km,
                "place_clarification_requested"
            );
            mqtt.publish_json(CLARIFICATION_TOPIC, question, QoS::AtLeastOnce, false)
                .await?;
        }
        if let Some(snapshot) = snapshot {
            snapshot?.write().await?;
        }
        Ok(())
    }
}
