//! The dashboard's settings: where it listens and its one user.

use homelab::secret::Secret;
use serde::Deserialize;

#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub(crate) struct DashboardSettings {
    /// The one port the stack publishes.
    pub(crate) dashboard_port: u16,
    /// `0.0.0.0` in a container; `127.0.0.1` keeps it to this machine.
    pub(crate) dashboard_bind: String,
    pub(crate) dashboard_username: String,
    /// Required unless bound to loopback (then one is generated into DATA_DIR).
    pub(crate) dashboard_password: Secret,
    pub(crate) dashboard_session_hours: u32,
}

impl Default for DashboardSettings {
    fn default() -> Self {
        Self {
            dashboard_port: 8085,
            dashboard_bind: "0.0.0.0".into(),
            dashboard_username: "admin".into(),
            dashboard_password: Secret::default(),
            dashboard_session_hours: 12,
        }
    }
}

impl DashboardSettings {
    pub(crate) fn address(&self) -> anyhow::Result<std::net::SocketAddr> {
        let ip: std::net::IpAddr = self.dashboard_bind.trim().parse().map_err(|_| {
            anyhow::anyhow!(
                "DASHBOARD_BIND={:?} is not an IP address",
                self.dashboard_bind
            )
        })?;
        Ok(std::net::SocketAddr::new(ip, self.dashboard_port))
    }
}
