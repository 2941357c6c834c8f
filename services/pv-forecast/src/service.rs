//! The I/O around the model: Open-Meteo and HA history in, MQTT and HA entities out.

use chrono::{DateTime, Duration as Span, Timelike, Utc};
use chrono_tz::Tz;
use homelab::discovery::{self, Entity};
use homelab::messages::pv_forecast::{HourEnergy, Updated};
use homelab::web::WebClient;
use homelab::{Context, Health, Message, Service, StateStore};
use pv_forecast::forecast::{hourly_energy, Forecast};
use pv_forecast::model::{Model, Sample, Site};
use pv_forecast::solar::Array;
use pv_forecast::weather::{self, WeatherHour};
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub(crate) struct PvForecastSettings {
    pub(crate) home_latitude: f64,
    pub(crate) home_longitude: f64,
    pub(crate) pv_forecast_arrays: String,
    pv_forecast_open_meteo_url: String,
    pv_forecast_power_entity: String,
    pv_forecast_refresh_seconds: u64,
    pv_forecast_train_days: u32,
    pv_forecast_min_train_days: usize,
    /// From this many days of history, fit the roof's orientation and size to the meter.
    pv_forecast_calibration_days: usize,
    pv_forecast_retrain_hour: u32,
    /// Demo only: place the sun as on this date (sim-home's SIM_SEASON_DATE), so the
    /// model and a simulated sky of another season agree. Empty: the real date.
    pv_forecast_sun_date: String,
    pv_forecast_stale_after_seconds: i64,
}

impl Default for PvForecastSettings {
    fn default() -> Self {
        Self {
            home_latitude: 0.0,
            home_longitude: 0.0,
            pv_forecast_arrays: String::new(),
            pv_forecast_open_meteo_url: "https://api.open-meteo.com".into(),
            pv_forecast_power_entity: "sensor.pv_power".into(),
            pv_forecast_refresh_seconds: 3600,
            pv_forecast_train_days: 30,
            pv_forecast_min_train_days: 7,
            pv_forecast_calibration_days: 14,
            pv_forecast_retrain_hour: 2,
            pv_forecast_sun_date: String::new(),
            pv_forecast_stale_after_seconds: 3 * 3600,
        }
    }
}

impl PvForecastSettings {
    /// The place and arrays, or what is wrong with them.
    pub(crate) fn site(&self) -> anyhow::Result<Site> {
        if self.home_latitude == 0.0 && self.home_longitude == 0.0 {
            anyhow::bail!("HOME_LATITUDE and HOME_LONGITUDE are not set (the PV's location)");
        }
        if !(-90.0..=90.0).contains(&self.home_latitude) {
            anyhow::bail!("HOME_LATITUDE={} is not -90..90", self.home_latitude);
        }
        if !(-180.0..=180.0).contains(&self.home_longitude) {
            anyhow::bail!("HOME_LONGITUDE={} is not -180..180", self.home_longitude);
        }
        let arrays = Array::parse_list(&self.pv_forecast_arrays)
            .map_err(|error| anyhow::anyhow!("PV_FORECAST_ARRAYS: {error}"))?;
        Ok(Site {
            latitude: self.home_latitude,
            longitude: self.home_longitude,
            sun_shift_days: 0,
            arrays,
        })
    }

    /// Days from `today` to `PV_FORECAST_SUN_DATE` (0 when unset), counted as sim-home
    /// counts its season shift.
    pub(crate) fn sun_shift_days(&self, today: chrono::NaiveDate) -> anyhow::Result<i64> {
        match self.pv_forecast_sun_date.trim() {
            "" => Ok(0),
            date => {
                let date = chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").map_err(|_| {
                    anyhow::anyhow!("PV_FORECAST_SUN_DATE={date:?} is not YYYY-MM-DD")
                })?;
                Ok((date - today).num_days())
            }
        }
    }
}

/// What survives a restart: the trained model and the last good forecast.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct PvForecastState {
    model: Model,
    forecast: Option<Forecast>,
}

#[derive(Debug, Deserialize)]
struct Command {
    command: String,
}

#[derive(Clone, Copy, Debug)]
enum Job {
    Refresh,
    Retrain,
}

pub(crate) struct PvForecastService {
    settings: PvForecastSettings,
    site: Site,
    zone: Tz,
    web: WebClient,
    store: StateStore<PvForecastState>,
    state: Mutex<PvForecastState>,
    last_error: Mutex<Option<String>>,
}

fn entities() -> Vec<Entity> {
    let energy = |id: &str, name: &str| {
        Entity::sensor(id, name)
            .unit("kWh")
            .device_class("energy")
            .icon("mdi:solar-power")
    };
    vec![
        energy("today_remaining", "PV forecast today remaining"),
        energy("today_total", "PV forecast today"),
        energy("tomorrow_total", "PV forecast tomorrow"),
        Entity::sensor("model", "PV forecast model"),
        Entity::sensor("hold_out_nmae", "PV forecast error (nMAE)")
            .unit("%")
            .state_class("measurement"),
        Entity::binary_sensor("stale", "PV forecast stale").device_class("problem"),
        Entity::sensor("roof", "PV roof as fitted to the meter").icon("mdi:home-roof"),
    ]
}

impl Service for PvForecastService {
    const NAME: &'static str = "pv-forecast";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const ABOUT: &'static str =
        "Forecasts today's and tomorrow's PV energy (physical baseline + learned correction).";
    type Settings = PvForecastSettings;

    /// HA is the PV meter's history to learn from; without a meter entity the
    /// physical model runs alone.
    fn uses_home_assistant(settings: &homelab::Settings<PvForecastSettings>) -> bool {
        !settings.service.pv_forecast_power_entity.trim().is_empty()
    }

    /// With INFLUXDB_URL set, the PV meter's history is read from InfluxDB.
    fn uses_influx(settings: &homelab::Settings<PvForecastSettings>) -> bool {
        !settings.common.influxdb_url.trim().is_empty()
            && !settings.service.pv_forecast_power_entity.trim().is_empty()
    }

    fn new(ctx: &Context<PvForecastSettings>) -> anyhow::Result<Self> {
        let settings = ctx.settings().clone();
        let zone = ctx.common().time_zone()?;
        let mut site = settings.site()?;
        site.sun_shift_days =
            settings.sun_shift_days(Utc::now().with_timezone(&zone).date_naive())?;
        if site.sun_shift_days != 0 {
            tracing::warn!(
                sun_shift_days = site.sun_shift_days,
                "sun_placed_on_another_date_demo_only"
            );
        }
        if settings.pv_forecast_train_days > 92 {
            anyhow::bail!(
                "PV_FORECAST_TRAIN_DAYS={} is above Open-Meteo's 92 past days",
                settings.pv_forecast_train_days
            );
        }
        let store = ctx.state_store::<PvForecastState>();
        let state = store.load().state;
        tracing::info!(
            model = state.model.kind(),
            kwp = site.kwp(),
            arrays = site.arrays.len(),
            "state_loaded"
        );
        Ok(Self {
            settings,
            site,
            zone,
            web: WebClient::new(concat!("homelab-pv-forecast/", env!("CARGO_PKG_VERSION")))
                .until(ctx.shutdown().clone()),
            store,
            state: Mutex::new(state),
            last_error: Mutex::new(None),
        })
    }

    async fn run(self: Arc<Self>, ctx: Context<PvForecastSettings>) -> anyhow::Result<()> {
        discovery::announce(ctx.mqtt(), Self::VERSION, &entities()).await?;
        let (jobs, mut queue) = mpsc::channel::<Job>(8);
        let topic = format!("homelab/orchestrator/command/{}", Self::NAME);
        ctx.subscribe(&topic, move |message: Message<Command>| {
            let jobs = jobs.clone();
            async move {
                let job = match message.payload.command.as_str() {
                    "refresh" => Job::Refresh,
                    "retrain" => Job::Retrain,
                    other => {
                        anyhow::bail!("unknown command {other:?}; expected refresh or retrain")
                    }
                };
                tracing::info!(command = ?job, "command_received");
                jobs.send(job)
                    .await
                    .map_err(|_| anyhow::anyhow!("the service is stopping"))?;
                Ok(())
            }
        })
        .await?;
        tracing::info!(topic = %topic, kwp = self.site.kwp(), "service_started");

        let mut refresh = tokio::time::interval(Duration::from_secs(
            self.settings.pv_forecast_refresh_seconds.max(60),
        ));
        loop {
            let job = tokio::select! {
                () = ctx.shutdown().cancelled() => return Ok(()),
                _ = refresh.tick() => if self.retrain_due(Utc::now()) { Job::Retrain } else { Job::Refresh },
                job = queue.recv() => job.unwrap_or(Job::Refresh),
            };
            if let Job::Retrain = job {
                if let Err(error) = self.retrain(&ctx).await {
                    tracing::warn!(error = format!("{error:#}"), "retrain_failed");
                }
            }
            self.refresh(&ctx).await?;
        }
    }

    fn health(&self) -> Health {
        let state = self.state.lock().expect("poisoned");
        let base = match (
            &state.forecast,
            self.last_error.lock().expect("poisoned").clone(),
        ) {
            (Some(forecast), _) if !self.is_stale(forecast, Utc::now()) => Health::online(),
            (_, Some(error)) => Health::degraded(format!("no fresh forecast: {error}")),
            _ => Health::degraded("no fresh forecast yet"),
        };
        base.with("model", state.model.kind()).with(
            "forecast_generated_at",
            state.forecast.as_ref().map(|f| f.generated_at),
        )
    }
}

impl PvForecastService {
    fn is_stale(&self, forecast: &Forecast, now: DateTime<Utc>) -> bool {
        now - forecast.generated_at > Span::seconds(self.settings.pv_forecast_stale_after_seconds)
    }

    /// Once a day at the retrain hour (local), and at once when never trained;
    /// never without a PV meter to learn from.
    fn retrain_due(&self, now: DateTime<Utc>) -> bool {
        if self.settings.pv_forecast_power_entity.trim().is_empty() {
            return false;
        }
        let state = self.state.lock().expect("poisoned");
        let Some(report) = &state.model.report else {
            return true;
        };
        let local_now = now.with_timezone(&self.zone);
        let trained_day = report.trained_at.with_timezone(&self.zone).date_naive();
        trained_day < local_now.date_naive()
            && local_now.hour() >= self.settings.pv_forecast_retrain_hour
    }

    async fn fetch_weather(&self, past_days: u32) -> anyhow::Result<Vec<WeatherHour>> {
        let url = weather::forecast_url(
            &self.settings.pv_forecast_open_meteo_url,
            self.site.latitude,
            self.site.longitude,
            past_days,
        );
        let body = self.web.get_text(&url).await?;
        weather::parse_open_meteo(&body).map_err(|error| anyhow::anyhow!("Open-Meteo: {error}"))
    }

    /// Fetches the forecast, publishes it, keeps it; on failure publishes the last good one.
    async fn refresh(&self, ctx: &Context<PvForecastSettings>) -> anyhow::Result<()> {
        let now = Utc::now();
        match self.fetch_weather(0).await {
            Ok(hours) => {
                let (forecast, snapshot) = {
                    let mut state = self.state.lock().expect("poisoned");
                    let forecast = Forecast::make(&self.site, &state.model, &hours, now, self.zone);
                    state.forecast = Some(forecast.clone());
                    (forecast, self.store.snapshot(&state))
                };
                save_snapshot(snapshot).await;
                *self.last_error.lock().expect("poisoned") = None;
                tracing::info!(today_kwh = forecast.today_kwh, tomorrow_kwh = forecast.tomorrow_kwh, model = %forecast.model, "forecast_refreshed");
                ctx.touch_health();
            }
            Err(error) => {
                let message = format!("{error:#}");
                tracing::warn!(error = %message, "weather_fetch_failed");
                *self.last_error.lock().expect("poisoned") = Some(message);
            }
        }
        self.publish(ctx, now).await
    }

    async fn publish(
        &self,
        ctx: &Context<PvForecastSettings>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        let Some(forecast) = self.state.lock().expect("poisoned").forecast.clone() else {
            return Ok(());
        };
        let stale = self.is_stale(&forecast, now);
        // Yesterday's forecast says nothing about today's remaining energy.
        let current = forecast.is_for(now, self.zone);
        let remaining = if current {
            forecast.remaining_today_kwh(now)
        } else {
            0.0
        };
        if stale {
            tracing::warn!(generated_at = %forecast.generated_at, "forecast_stale");
        }
        let updated = Updated {
            generated_at: forecast.generated_at,
            today_date: forecast.today_date,
            today: forecast.today.clone(),
            tomorrow: forecast.tomorrow.clone(),
            today_kwh: forecast.today_kwh,
            today_remaining_kwh: remaining,
            tomorrow_kwh: forecast.tomorrow_kwh,
            model: forecast.model.clone(),
            hold_out_error: forecast.hold_out_error.map(Into::into),
            stale,
            today_actual: Vec::new(),
            pv_now_w: None,
        };
        let updated = match self.measured_today(ctx, now).await {
            Ok((today_actual, pv_now_w)) => Updated {
                today_actual,
                pv_now_w,
                ..updated
            },
            Err(error) => {
                tracing::warn!(error = format!("{error:#}"), "pv_actual_unavailable");
                updated
            }
        };
        // Retained: the dashboard and smart charging get it whenever they start.
        ctx.mqtt()
            .publish_json(
                homelab::messages::pv_forecast::UPDATED_TOPIC,
                &updated,
                homelab::QoS::AtLeastOnce,
                true,
            )
            .await?;
        let mqtt = ctx.mqtt();
        discovery::publish_state(mqtt, "today_remaining", remaining).await?;
        discovery::publish_state(mqtt, "today_total", forecast.today_kwh).await?;
        discovery::publish_state(mqtt, "tomorrow_total", forecast.tomorrow_kwh).await?;
        discovery::publish_state(mqtt, "model", &forecast.model).await?;
        let nmae = discovery::number(forecast.hold_out_error.map(|e| e.nmae * 100.0), 1);
        discovery::publish_state(mqtt, "hold_out_nmae", nmae).await?;
        discovery::publish_state(mqtt, "stale", if stale { "ON" } else { "OFF" }).await?;
        Ok(())
    }

    /// What the PV meter counted in today's complete local hours, and its last reading;
    /// nothing without a meter.
    async fn measured_today(
        &self,
        ctx: &Context<PvForecastSettings>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<(Vec<HourEnergy>, Option<f64>)> {
        let entity = self.settings.pv_forecast_power_entity.trim();
        if entity.is_empty() {
            return Ok((Vec::new(), None));
        }
        let midnight = now
            .with_timezone(&self.zone)
            .date_naive()
            .and_hms_opt(0, 0, 0)
            .and_then(|local| local.and_local_timezone(self.zone).earliest())
            .map_or(now - Span::hours(24), |at| at.with_timezone(&Utc));
        let history = ctx
            .home_assistant()
            .history(&[entity], midnight, now)
            .await?;
        let samples = power_samples(history);
        let pv_now_w = samples.last().and_then(|(_, watts)| *watts);
        let hours = hourly_energy(&samples, now)
            .into_iter()
            .filter(|(start, _)| *start >= midnight)
            .map(|(start, kwh)| HourEnergy {
                start,
                kwh: (kwh * 1000.0).round() / 1000.0,
                p10_kwh: None,
                p90_kwh: None,
            })
            .collect();
        Ok((hours, pv_now_w))
    }

    /// Trains on the past days' weather and what the PV meter counted (HA history).
    async fn retrain(&self, ctx: &Context<PvForecastSettings>) -> anyhow::Result<()> {
        if self.settings.pv_forecast_power_entity.trim().is_empty() {
            anyhow::bail!("PV_FORECAST_POWER_ENTITY is empty: there is no PV meter to learn from");
        }
        let now = Utc::now();
        let days = self.settings.pv_forecast_train_days;
        let weather = self.fetch_weather(days).await?;
        let start = now - Span::days(i64::from(days));
        let entity = self.settings.pv_forecast_power_entity.as_str();
        // Influx keeps years where HA's recorder keeps days: it wins when configured.
        let samples_w = match ctx.influx() {
            Some(influx) => influx_power_samples(influx, entity, start, now).await?,
            None => power_samples(ctx.home_assistant().history(&[entity], start, now).await?),
        };
        tracing::info!(
            source = if ctx.influx().is_some() {
                "influxdb"
            } else {
                "home_assistant"
            },
            readings = samples_w.len(),
            "pv_history_read"
        );
        let energy: std::collections::BTreeMap<_, _> =
            hourly_energy(&samples_w, now).into_iter().collect();
        let samples: Vec<Sample> = weather
            .into_iter()
            .filter_map(|hour| {
                energy.get(&hour.start).map(|kwh| Sample {
                    actual_kwh: *kwh,
                    weather: hour,
                })
            })
            .collect();
        let model = Model::train(
            &self.site,
            &samples,
            self.settings.pv_forecast_min_train_days,
            self.settings.pv_forecast_calibration_days,
            now,
        );
        let report = model.report.clone();
        if let Some(report) = &report {
            tracing::info!(
                model = model.kind(),
                training_days = report.training_days,
                hold_out_days = report.hold_out_days,
                training_mae_kwh = report.training_error.map(|e| e.mae_kwh),
                training_nmae = report.training_error.map(|e| e.nmae),
                hold_out_mae_kwh = report.hold_out_error.map(|e| e.mae_kwh),
                hold_out_nmae = report.hold_out_error.map(|e| e.nmae),
                baseline_hold_out_nmae = report.baseline_hold_out_error.map(|e| e.nmae),
                note = report.note.as_deref(),
                calibration = report.calibration_note.as_deref(),
                "model_trained"
            );
            let roof = report
                .calibration_note
                .as_deref()
                .unwrap_or("roof as entered");
            // HA keeps at most 255 characters of a state.
            let roof: String = roof.chars().take(255).collect();
            discovery::publish_state(ctx.mqtt(), "roof", roof).await?;
        }
        ctx.publish(
            "model",
            &serde_json::json!({"kind": model.kind(), "report": report, "samples": samples.len()}),
        )
        .await?;
        let snapshot = {
            let mut state = self.state.lock().expect("poisoned");
            state.model = model;
            self.store.snapshot(&state)
        };
        save_snapshot(snapshot).await;
        Ok(())
    }
}

/// The PV meter's readings from InfluxDB as Home Assistant's InfluxDB (v2) integration
/// writes them: measurement = the unit (`W`, `kW`), tags `domain` and `entity_id`
/// (without the domain), field `value`.
async fn influx_power_samples(
    influx: &homelab::influx::Influx,
    entity: &str,
    start: DateTime<Utc>,
    stop: DateTime<Utc>,
) -> anyhow::Result<Vec<(DateTime<Utc>, Option<f64>)>> {
    use homelab::influx::{FluxParam, FluxQuery};
    let (domain, object) = entity.split_once('.').ok_or_else(|| {
        anyhow::anyhow!("PV_FORECAST_POWER_ENTITY={entity:?} is not domain.object")
    })?;
    let query = FluxQuery::new(
        "from(bucket: params.bucket) |> range(start: params.start, stop: params.stop) \
         |> filter(fn: (r) => r.domain == params.domain and r.entity_id == params.entity_id and r._field == \"value\") \
         |> keep(columns: [\"_time\", \"_value\", \"_measurement\"]) |> sort(columns: [\"_time\"])",
    )
    .param("bucket", FluxParam::String(influx.bucket().to_string()))
    .param("start", FluxParam::Time(start))
    .param("stop", FluxParam::Time(stop))
    .param("domain", FluxParam::String(domain.to_string()))
    .param("entity_id", FluxParam::String(object.to_string()));
    let rows = influx.query(&query).await?;
    let mut samples: Vec<(DateTime<Utc>, Option<f64>)> = rows
        .iter()
        .filter_map(|row| {
            let at = DateTime::parse_from_rfc3339(row.get("_time")?.as_str()?)
                .ok()?
                .with_timezone(&Utc);
            let value = row.get("_value").and_then(serde_json::Value::as_f64);
            let to_watts = match row.get("_measurement").and_then(|m| m.as_str()) {
                Some("kW") => 1000.0,
                Some("MW") => 1_000_000.0,
                _ => 1.0,
            };
            Some((at, value.map(|v| v * to_watts)))
        })
        .collect();
    samples.sort_by_key(|(at, _)| *at);
    Ok(samples)
}

/// The PV meter's readings in time order, `None` where it was unavailable.
fn power_samples(history: Vec<Vec<homelab::ha::EntityState>>) -> Vec<(DateTime<Utc>, Option<f64>)> {
    history
        .into_iter()
        .flatten()
        .filter_map(|state| {
            let at = state
                .last_changed
                .as_deref()
                .or(state.last_updated.as_deref())?;
            let at = DateTime::parse_from_rfc3339(at).ok()?.with_timezone(&Utc);
            Some((at, state.reading().and_then(|r| r.power_watts())))
        })
        .collect()
}

/// Writes a state snapshot taken under the lock, off the async workers.
async fn save_snapshot(snapshot: Result<homelab::state::Snapshot, homelab::state::StateError>) {
    if let Err(error) = async { snapshot?.write().await }.await {
        tracing::warn!(error = %error, "state_save_failed");
    }
}
