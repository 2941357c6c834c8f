//! The service: MQTT topics into the live snapshot, and the web server.

use crate::auth::{self, Auth};
use crate::live::{Live, Section, ServiceSeen};
use crate::settings::DashboardSettings;
use crate::web::{self, App};
use homelab::messages::{
    ev_forecast, health_monitor, heartbeat, pv_forecast, sim_home, smart_ev_charging,
};
use homelab::{Context, Health, Message, Service};
use std::path::Path;
use std::sync::Arc;

pub(crate) struct DashboardService {
    live: Arc<Live>,
    auth: Arc<Auth>,
    address: std::net::SocketAddr,
}

/// The password's hash: from DASHBOARD_PASSWORD, or on loopback a generated one in a
/// file only this user can read (its path is logged, never the password).
fn password_hash(
    settings: &DashboardSettings,
    address: std::net::SocketAddr,
    data_dir: &Path,
) -> anyhow::Result<String> {
    if !settings.dashboard_password.is_empty() {
        return Ok(auth::hash_password(settings.dashboard_password.expose()));
    }
    if !address.ip().is_loopback() {
        anyhow::bail!(
            "DASHBOARD_PASSWORD is empty: set it in .env (the dashboard listens on {address}, reachable from the network)"
        );
    }
    let password = uuid::Uuid::new_v4().simple().to_string();
    let path = data_dir.join("dashboard-password");
    std::fs::create_dir_all(data_dir)?;
    // Created readable by this user only, before a byte is in it.
    let written = {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)
            .and_then(|mut file| file.write_all(format!("{password}\n").as_bytes()))
    };
    written.map_err(|error| anyhow::anyhow!("cannot write {}: {error}", path.display()))?;
    tracing::warn!(path = %path.display(), "dashboard_password_generated");
    Ok(auth::hash_password(&password))
}

impl Service for DashboardService {
    const NAME: &'static str = "dashboard";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const ABOUT: &'static str =
        "A live web page for the home lab: services, energy, charging and approvals.";
    type Settings = DashboardSettings;

    fn new(ctx: &Context<DashboardSettings>) -> anyhow::Result<Self> {
        let settings = ctx.settings();
        let address = settings.address()?;
        let hash = password_hash(settings, address, &ctx.common().data_dir)?;
        let ttl = chrono::Duration::hours(i64::from(settings.dashboard_session_hours.max(1)));
        Ok(Self {
            live: Arc::new(Live::new()),
            auth: Arc::new(Auth::new(&settings.dashboard_username, hash, ttl)),
            address,
        })
    }

    async fn run(self: Arc<Self>, ctx: Context<DashboardSettings>) -> anyhow::Result<()> {
        self.follow_topics(&ctx).await?;
        let listener = tokio::net::TcpListener::bind(self.address)
            .await
            .map_err(|error| {
                anyhow::anyhow!("DASHBOARD_PORT: cannot listen on {}: {error}", self.address)
            })?;
        tracing::info!(address = %self.address, "dashboard_listening");
        let app = web::router(App {
            live: self.live.clone(),
            auth: self.auth.clone(),
            mqtt: ctx.mqtt().clone(),
        });
        let shutdown = ctx.shutdown().clone();
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await?;
        Ok(())
    }

    fn health(&self) -> Health {
        Health::online().with("services_seen", self.live.snapshot().services.len())
    }
}

impl DashboardService {
    /// Every topic the page shows; the broker's retained messages fill it at once.
    async fn follow_topics(&self, ctx: &Context<DashboardSettings>) -> anyhow::Result<()> {
        let live = self.live.clone();
        ctx.subscribe(
            heartbeat::FILTER,
            move |message: Message<heartbeat::Heartbeat>| {
                let live = live.clone();
                async move {
                    let beat = message.payload;
                    live.update(&[Section::Services], |snapshot| {
                        snapshot.services.insert(
                            beat.service.clone(),
                            ServiceSeen {
                                heartbeat: beat,
                                received_at: chrono::Utc::now(),
                            },
                        );
                    });
                    Ok(())
                }
            },
        )
        .await?;
        let live = self.live.clone();
        ctx.subscribe(
            health_monitor::STATUS_TOPIC,
            move |message: Message<health_monitor::Status>| {
                let live = live.clone();
                async move {
                    live.update(&[Section::Services, Section::Actions], |snapshot| {
                        snapshot.health = Some(message.payload)
                    });
                    Ok(())
                }
            },
        )
        .await?;
        let live = self.live.clone();
        ctx.subscribe(
            smart_ev_charging::STATUS_TOPIC,
            move |message: Message<smart_ev_charging::Status>| {
                let live = live.clone();
                async move {
                    live.update(&[Section::Charging], |snapshot| {
                        snapshot.charging = Some(message.payload)
                    });
                    Ok(())
                }
            },
        )
        .await?;
        let live = self.live.clone();
        let mode_state = homelab::discovery::state_topic("smart-ev-charging", "mode");
        ctx.mqtt()
            .subscribe_text(&mode_state, move |message: Message<String>| {
                let live = live.clone();
                async move {
                    let mode = message.payload.trim().to_string();
                    live.update(&[Section::Charging], |snapshot| snapshot.mode = Some(mode));
                    Ok(())
                }
            })
            .await?;
        let live = self.live.clone();
        ctx.subscribe(
            pv_forecast::UPDATED_TOPIC,
            move |message: Message<pv_forecast::Updated>| {
                let live = live.clone();
                async move {
                    live.update(&[Section::Energy], |snapshot| {
                        snapshot.pv = Some(message.payload)
                    });
                    Ok(())
                }
            },
        )
        .await?;
        let live = self.live.clone();
        ctx.subscribe(
            ev_forecast::PLAN_TOPIC,
            move |message: Message<ev_forecast::Plan>| {
                let live = live.clone();
                async move {
                    live.update(&[Section::Charging], |snapshot| {
                        snapshot.plan = Some(message.payload)
                    });
                    Ok(())
                }
            },
        )
        .await?;
        let live = self.live.clone();
        ctx.subscribe(
            sim_home::STATUS_TOPIC,
            move |message: Message<sim_home::Status>| {
                let live = live.clone();
                async move {
                    live.update(&[Section::Energy], |snapshot| {
                        snapshot.house = Some(message.payload)
                    });
                    Ok(())
                }
            },
        )
        .await?;
        Ok(())
    }
}
