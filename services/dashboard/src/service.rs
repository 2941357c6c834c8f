//! The service: MQTT topics into the live snapshot, and the web server.

use crate::auth::{self, Auth};
use crate::live::{Live, Section, ServiceSeen, Snapshot};
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

/// The healthcheck's "successful cycle": the page answers. Every 30 s (and at once) it
/// asks its own sign-in page over loopback and touches the health file on a 200.
async fn prove_serving(ctx: Context<DashboardSettings>, serving: std::net::SocketAddr) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let target = if serving.ip().is_unspecified() {
        std::net::SocketAddr::from(([127, 0, 0, 1], serving.port()))
    } else {
        serving
    };
    loop {
        let answered = async {
            let mut stream = tokio::net::TcpStream::connect(target).await?;
            stream
                .write_all(b"GET /login HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                .await?;
            let mut head = [0u8; 12];
            stream.read_exact(&mut head).await?;
            Ok::<bool, std::io::Error>(head.starts_with(b"HTTP/1.1 200"))
        };
        match tokio::time::timeout(std::time::Duration::from_secs(5), answered).await {
            Ok(Ok(true)) => ctx.touch_health(),
            Ok(Ok(false)) => tracing::warn!("dashboard_self_check_not_ok"),
            Ok(Err(error)) => tracing::warn!(error = %error, "dashboard_self_check_failed"),
            Err(_) => tracing::warn!("dashboard_self_check_timed_out"),
        }
        if !ctx.sleep(std::time::Duration::from_secs(30)).await {
            return;
        }
    }
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
        let serving = listener.local_addr()?;
        let liveness = tokio::spawn(prove_serving(ctx.clone(), serving));
        let served = axum::serve(
            listener,
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await;
        liveness.abort();
        served?;
        Ok(())
    }

    fn health(&self) -> Health {
        Health::online().with("services_seen", self.live.snapshot().services.len())
    }
}

impl DashboardService {
    /// Keeps what `topic` says in the snapshot (`apply`) and signals `sections`.
    async fn follow<T>(
        &self,
        ctx: &Context<DashboardSettings>,
        topic: &str,
        sections: &'static [Section],
        apply: fn(&mut Snapshot, T),
    ) -> anyhow::Result<()>
    where
        T: serde::de::DeserializeOwned + Send + 'static,
    {
        let live = self.live.clone();
        ctx.subscribe(topic, move |message: Message<T>| {
            let live = live.clone();
            async move {
                live.update(sections, |snapshot| apply(snapshot, message.payload));
                Ok(())
            }
        })
        .await?;
        Ok(())
    }

    /// Every topic the page shows; the broker's retained messages fill it at once.
    async fn follow_topics(&self, ctx: &Context<DashboardSettings>) -> anyhow::Result<()> {
        self.follow(
            ctx,
            heartbeat::FILTER,
            &[Section::Services],
            |snapshot, beat: heartbeat::Heartbeat| {
                let seen = ServiceSeen {
                    received_at: chrono::Utc::now(),
                    heartbeat: beat,
                };
                snapshot
                    .services
                    .insert(seen.heartbeat.service.clone(), seen);
            },
        )
        .await?;
        self.follow(
            ctx,
            health_monitor::STATUS_TOPIC,
            &[Section::Services, Section::Actions],
            |snapshot, status: health_monitor::Status| snapshot.health = Some(status),
        )
        .await?;
        self.follow(
            ctx,
            smart_ev_charging::STATUS_TOPIC,
            // Its meters are the house's "now" when no simulator runs.
            &[Section::Charging, Section::Energy],
            |snapshot, status: smart_ev_charging::Status| snapshot.charging = Some(status),
        )
        .await?;
        self.follow(
            ctx,
            pv_forecast::UPDATED_TOPIC,
            &[Section::Energy],
            |snapshot, pv: pv_forecast::Updated| snapshot.pv = Some(pv),
        )
        .await?;
        self.follow(
            ctx,
            ev_forecast::PLAN_TOPIC,
            &[Section::Charging],
            |snapshot, plan: ev_forecast::Plan| snapshot.plan = Some(plan),
        )
        .await?;
        self.follow(
            ctx,
            sim_home::STATUS_TOPIC,
            &[Section::Energy],
            |snapshot, house: sim_home::Status| snapshot.house = Some(house),
        )
        .await?;
        // The select's state is plain text, as HA reads it.
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
        Ok(())
    }
}
