//! The I/O around the plan: calendars and Nominatim in, the plan out on MQTT and as
//! HA entities.

use chrono::{DateTime, Duration as Span, NaiveTime, Utc};
use ev_forecast::calendar::{self, Reading};
use ev_forecast::geocode::{self, DistanceTable, GeocodeCache, Place};
use ev_forecast::plan::{self, DistanceSource, Plan, PlanConfig, Trip};
use homelab::diagnose::{Check, Step};
use homelab::discovery::{self, Entity};
use homelab::web::WebClient;
use homelab::{Context, Health, Message, QoS, Service, Settings, StateStore};
use serde::Deserialize;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub(crate) struct EvForecastSettings {
    home_latitude: f64,
    home_longitude: f64,
    ev_forecast_ical_urls: String,
    ev_forecast_nominatim_url: String,
    ev_forecast_distances: String,
    ev_forecast_road_factor: f64,
    ev_forecast_consumption_kwh_per_100km: f64,
    ev_forecast_winter_factor: f64,
    ev_forecast_reserve_kwh: f64,
    ev_forecast_battery_kwh: f64,
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
            ev_forecast_nominatim_url: "https://nominatim.openstreetmap.org".into(),
            ev_forecast_distances: String::new(),
            ev_forecast_road_factor: 1.3,
            ev_forecast_consumption_kwh_per_100km: plan.consumption_kwh_per_100km,
            ev_forecast_winter_factor: plan.winter_factor,
            ev_forecast_reserve_kwh: plan.reserve_kwh,
            ev_forecast_battery_kwh: plan.battery_kwh,
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

pub(crate) struct EvForecastService {
    settings: EvForecastSettings,
    home: Place,
    table: DistanceTable,
    reading: Reading,
    web: WebClient,
    cache_store: StateStore<GeocodeCache>,
    cache: Mutex<GeocodeCache>,
    /// The last text of each calendar that could be read, kept when a fetch fails.
    calendars: Mutex<Vec<Option<String>>>,
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
                "EV_FORECAST_CHARGE_POWER_KW",
                settings.ev_forecast_charge_power_kw,
            ),
        ] {
            if value.is_nan() || value <= 0.0 {
                anyhow::bail!("{name}={value} must be above 0");
            }
        }
        let cache_store = StateStore::at(ctx.common().data_dir.join("geocode-cache.json"));
        let cache = cache_store.load().state;
        let calendars = settings.calendars().len();
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
            web: WebClient::new(concat!(
                "homelab-ev-forecast/",
                env!("CARGO_PKG_VERSION"),
                " (home automation; one query per new address)"
            ))
            .until(ctx.shutdown().clone()),
            cache_store,
            cache: Mutex::new(cache),
            calendars: Mutex::new(vec![None; calendars]),
            last: Mutex::new(None),
            calendar_errors: Mutex::new(Vec::new()),
            settings,
        })
    }

    async fn run(self: Arc<Self>, ctx: Context<EvForecastSettings>) -> anyhow::Result<()> {
        discovery::announce(ctx.mqtt(), Self::VERSION, &entities()).await?;
        let (refresh_now, mut requests) = mpsc::channel::<()>(4);
        let topic = format!("homelab/orchestrator/command/{}", Self::NAME);
        ctx.subscribe(&topic, move |message: Message<Command>| {
            let refresh_now = refresh_now.clone();
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
    }

    fn diagnose_steps(settings: &Settings<EvForecastSettings>) -> Vec<Step> {
        let calendars = settings.service.calendars();
        vec![Step::new("calendar", async move {
            if calendars.is_empty() {
                return Check::warn("EV_FORECAST_ICAL_URLS is empty: the plan stays empty");
            }
            let web = WebClient::with_retry(
                "homelab-ev-forecast-diagnose",
                homelab::RetryPolicy {
                    max_attempts: 1,
                    ..Default::default()
                },
            );
            let mut events = 0;
            for source in &calendars {
                match read_calendar(&web, source).await {
                    Ok(text) => events += text.matches("BEGIN:VEVENT").count(),
                    Err(error) => return Check::fail(format!("{error:#}")),
                }
            }
            Check::pass(format!(
                "{} calendar(s), {events} event(s)",
                calendars.len()
            ))
        })]
    }
}

impl EvForecastService {
    async fn trips(&self, now: DateTime<Utc>) -> Vec<Trip> {
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
        *self.calendar_errors.lock().expect("poisoned") = errors;
        let texts: Vec<String> = self
            .calendars
            .lock()
            .expect("poisoned")
            .iter()
            .flatten()
            .cloned()
            .collect();
        let until = now + Span::hours(self.settings.ev_forecast_horizon_hours.max(1));
        let config = self.settings.plan_config();
        let mut trips = Vec::new();
        for text in texts {
            let parsed = calendar::parse(&text, self.reading, now, until);
            for warning in &parsed.warnings {
                tracing::warn!(warning = %warning, "calendar_event_skipped");
            }
            for event in parsed.events {
                let Some(destination) = event.location.clone() else {
                    continue;
                };
                let (distance_km, source) = self.distance(&destination, &event.summary).await;
                trips.push(Trip {
                    energy_kwh: distance_km.map_or(0.0, |km| {
                        (plan::trip_energy_kwh(km, event.start, &config) * 100.0).round() / 100.0
                    }),
                    summary: event.summary,
                    destination: Some(destination),
                    start: event.start,
                    distance_km: distance_km.map(|km| (km * 10.0).round() / 10.0),
                    distance_source: source,
                });
            }
        }
        trips
    }

    /// The table first; else Nominatim through the cache. A failed lookup is not cached.
    async fn distance(&self, destination: &str, summary: &str) -> (Option<f64>, DistanceSource) {
        if let Some(km) = self.table.lookup(Some(destination), summary) {
            return (Some(km), DistanceSource::Table);
        }
        let cached = self.cache.lock().expect("poisoned").get(destination);
        let place = match cached {
            Some(place) => place,
            None => {
                let url =
                    geocode::nominatim_url(&self.settings.ev_forecast_nominatim_url, destination);
                let answer = match self.web.get_text(&url).await {
                    Ok(body) => geocode::parse_nominatim(&body).map_err(anyhow::Error::msg),
                    Err(error) => Err(error.into()),
                };
                // Nominatim's usage policy: at most one request per second.
                tokio::time::sleep(Duration::from_millis(1100)).await;
                match answer {
                    Ok(place) => {
                        let snapshot = {
                            let mut cache = self.cache.lock().expect("poisoned");
                            cache.insert(destination, place);
                            self.cache_store.snapshot(&cache)
                        };
                        if let Err(error) = async { snapshot?.write().await }.await {
                            tracing::warn!(error = %error, "geocode_cache_save_failed");
                        }
                        if place.is_none() {
                            tracing::warn!(destination, "destination_not_found");
                        }
                        place
                    }
                    Err(error) => {
                        tracing::warn!(
                            destination,
                            error = format!("{error:#}"),
                            "geocoding_failed"
                        );
                        None
                    }
                }
            }
        };
        match place {
            Some(place) => (
                Some(
                    geocode::haversine_km(self.home, place) * self.settings.ev_forecast_road_factor,
                ),
                DistanceSource::Geocoded,
            ),
            None => (None, DistanceSource::Unknown),
        }
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
        let trips = self.trips(now).await;
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
            format!(
                "{} ({})",
                t.summary,
                t.distance_km
                    .map_or("distance unknown".into(), |km| format!("{km:.0} km"))
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
        ctx.touch_health();
        Ok(())
    }
}
