//! The simulator as a homelab service: the HA-shaped API on `SIM_PORT`, the physics on
//! a clock running `SIM_SPEED` times faster than the wall clock, a status on MQTT.

use chrono::{DateTime, Duration as Span, Offset, TimeZone, Utc};
use homelab::{Context, Health, Service};
use serde::Deserialize;
use sim_home::api::{self, Sim};
use sim_home::physics::{House, HouseConfig};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub(crate) struct SimSettings {
    home_latitude: f64,
    home_longitude: f64,
    sim_bind: String,
    sim_port: u16,
    sim_speed: f64,
    sim_start_hour: f64,
    sim_pv_kwp: f64,
    sim_cloudiness: f64,
    sim_season_date: String,
}

impl Default for SimSettings {
    fn default() -> Self {
        Self {
            home_latitude: 52.0,
            home_longitude: 7.6,
            sim_bind: "127.0.0.1".into(),
            sim_port: 8123,
            sim_speed: 60.0,
            sim_start_hour: 10.0,
            sim_pv_kwp: 8.0,
            sim_cloudiness: 0.3,
            sim_season_date: String::new(),
        }
    }
}

pub(crate) struct SimHome {
    settings: SimSettings,
    sim: Arc<Sim>,
    house: Mutex<House>,
    start: DateTime<Utc>,
    utc_offset_h: f64,
}

impl Service for SimHome {
    const NAME: &'static str = "sim-home";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const ABOUT: &'static str = "A SIMULATED house speaking the Home Assistant API (for demos and tests, never production).";
    type Settings = SimSettings;

    fn new(ctx: &Context<SimSettings>) -> anyhow::Result<Self> {
        let settings = ctx.settings().clone();
        if !(settings.sim_speed > 0.0 && settings.sim_speed <= 10_000.0) {
            anyhow::bail!(
                "SIM_SPEED={} must be above 0 and at most 10000",
                settings.sim_speed
            );
        }
        if !(0.0..24.0).contains(&settings.sim_start_hour) {
            anyhow::bail!("SIM_START_HOUR={} must be 0..24", settings.sim_start_hour);
        }
        if !(0.0..=1.0).contains(&settings.sim_cloudiness) {
            anyhow::bail!("SIM_CLOUDINESS={} must be 0..1", settings.sim_cloudiness);
        }
        let token = ctx.common().ha_token.expose().to_string();
        if token.is_empty() {
            anyhow::bail!("HA_TOKEN is not set: sim-home accepts exactly that token");
        }
        let zone = ctx.common().time_zone()?;
        let today = Utc::now().with_timezone(&zone).date_naive();
        let local_start = today.and_hms_opt(0, 0, 0).unwrap_or_default()
            + Span::seconds((settings.sim_start_hour * 3600.0) as i64);
        let start = zone
            .from_local_datetime(&local_start)
            .earliest()
            .map_or_else(Utc::now, |t| t.with_timezone(&Utc));
        let utc_offset_h = f64::from(
            zone.offset_from_utc_datetime(&start.naive_utc())
                .fix()
                .local_minus_utc(),
        ) / 3600.0;
        let season_shift_days = if settings.sim_season_date.trim().is_empty() {
            0
        } else {
            let season =
                chrono::NaiveDate::parse_from_str(settings.sim_season_date.trim(), "%Y-%m-%d")
                    .map_err(|_| {
                        anyhow::anyhow!(
                            "SIM_SEASON_DATE={:?} is not YYYY-MM-DD",
                            settings.sim_season_date
                        )
                    })?;
            (season - today).num_days()
        };
        let config = HouseConfig {
            season_shift_days,
            latitude: settings.home_latitude,
            longitude: settings.home_longitude,
            pv_kwp: settings.sim_pv_kwp,
            cloudiness: settings.sim_cloudiness,
            ..HouseConfig::default()
        };
        Ok(Self {
            sim: Sim::new(&token, config.clone()),
            house: Mutex::new(House::new(config)),
            settings,
            start,
            utc_offset_h,
        })
    }

    async fn run(self: Arc<Self>, ctx: Context<SimSettings>) -> anyhow::Result<()> {
        let address = format!("{}:{}", self.settings.sim_bind, self.settings.sim_port);
        let listener = tokio::net::TcpListener::bind(&address)
            .await
            .map_err(|error| anyhow::anyhow!("SIM_PORT: cannot listen on {address}: {error}"))?;
        tracing::warn!(
            address = %address,
            speed = self.settings.sim_speed,
            "SIMULATOR_running_this_is_not_a_real_house"
        );
        let shutdown = ctx.shutdown().clone();
        let router = api::router(self.sim.clone());
        let server = tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async move { shutdown.cancelled().await })
                .await
        });
        let began = Instant::now();
        let mut last = Instant::now();
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let mut ticks: u64 = 0;
        loop {
            tokio::select! {
                () = ctx.shutdown().cancelled() => break,
                _ = tick.tick() => {}
            }
            let now = Instant::now();
            let sim_seconds = (now - last).as_secs_f64() * self.settings.sim_speed;
            last = now;
            let sim_time = self.start
                + Span::milliseconds(
                    (began.elapsed().as_secs_f64() * self.settings.sim_speed * 1000.0) as i64,
                );
            let readings = {
                let mut house = self.house.lock().expect("poisoned");
                for (entity, value) in self.sim.take_commands() {
                    match entity.as_str() {
                        api::WALLBOX_CURRENT => house.wallbox_current_a = value,
                        api::WALLBOX_PHASES => house.wallbox_phases = value,
                        _ => house.battery_hold = value == 1.0,
                    }
                    tracing::info!(entity_id = %entity, value, "wallbox_commanded");
                }
                house.step(sim_time, sim_seconds.max(0.001), self.utc_offset_h)
            };
            self.sim.publish_readings(&readings);
            ticks += 1;
            if ticks % 5 == 1 {
                let local = sim_time + Span::seconds((self.utc_offset_h * 3600.0) as i64);
                let status = homelab::messages::sim_home::Status {
                    simulated: true,
                    sim_time,
                    sim_local_time: local.format("%H:%M").to_string(),
                    pv_w: readings.pv_w.round(),
                    load_w: readings.load_w.round(),
                    grid_w: readings.grid_w.round(),
                    battery_w: readings.battery_w.round(),
                    battery_soc: (readings.battery_soc * 10.0).round() / 10.0,
                    ev_w: readings.ev_w.round(),
                    ev_soc: (readings.ev_soc * 10.0).round() / 10.0,
                };
                ctx.publish("status", &status).await?;
            }
            ctx.touch_health();
        }
        let _ = server.await;
        Ok(())
    }

    fn health(&self) -> Health {
        let house = self.house.lock().expect("poisoned");
        Health::online()
            .with("simulated", true)
            .with("wallbox_current_a", house.wallbox_current_a)
            .with(
                "ev_soc",
                house.last.map(|r| (r.ev_soc * 10.0).round() / 10.0),
            )
    }
}
