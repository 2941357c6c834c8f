//! The Docker Engine API (bollard) at `DOCKER_HOST`: the containers' state, health,
//! restarts and OOM kills; a restart; `diagnose --json` run inside a container.

use crate::findings::{Finding, Kind, Layer, Severity};
use bollard::exec::{CreateExecOptions, StartExecResults};
use bollard::query_parameters::{
    InspectContainerOptions, ListContainersOptions, RestartContainerOptions,
};
use futures_util::StreamExt;
use serde::Serialize;
use std::collections::HashMap;
use std::time::Duration;

const TIMEOUT_SECONDS: u64 = 30;
const COMPOSE_SERVICE: &str = "com.docker.compose.service";
const COMPOSE_PROJECT: &str = "com.docker.compose.project";

#[derive(Clone, Debug, PartialEq, Serialize)]
pub(crate) struct Container {
    pub(crate) name: String,
    /// Its Compose service, when Compose made it.
    pub(crate) service: Option<String>,
    /// running, exited, restarting, ...
    pub(crate) state: String,
    /// healthy, unhealthy, starting, or none without a HEALTHCHECK.
    pub(crate) health: String,
    pub(crate) restart_count: i64,
    pub(crate) oom_killed: bool,
    pub(crate) exit_code: Option<i64>,
}

/// The container layer's findings. `self_name`: this service's own container is not
/// judged by itself.
pub(crate) fn container_findings(containers: &[Container]) -> Vec<Finding> {
    let mut findings = Vec::new();
    for container in containers {
        let name = &container.name;
        let finding = if container.state != "running" {
            Finding::new(
                Layer::Containers,
                Kind::ContainerNotRunning,
                Severity::Critical,
                name,
                format!(
                    "container {name} is {}{}",
                    container.state,
                    container
                        .exit_code
                        .map(|code| format!(" (exit code {code})"))
                        .unwrap_or_default()
                ),
            )
        } else if container.health == "unhealthy" {
            Finding::new(
                Layer::Containers,
                Kind::ContainerUnhealthy,
                Severity::Warning,
                name,
                format!("container {name} is unhealthy (its HEALTHCHECK fails)"),
            )
        } else {
            continue;
        };
        findings.push(finding);
        if container.oom_killed {
            findings.push(Finding::new(
                Layer::Containers,
                Kind::ContainerOomKilled,
                Severity::Warning,
                name,
                format!("container {name} was killed for using too much memory (mem_limit)"),
            ));
        }
    }
    findings
}

#[derive(Clone, Debug)]
pub(crate) struct Docker {
    client: bollard::Docker,
    /// Only this Compose project's containers; empty: every container.
    project: String,
}

impl Docker {
    /// `host` as in `DOCKER_HOST`: `unix:///var/run/docker.sock` or `tcp://host:2375`.
    pub(crate) async fn connect(host: &str, project: &str) -> Result<Self, String> {
        let client = if host.starts_with("unix://") || host.starts_with('/') {
            let path = host.trim_start_matches("unix://");
            if !std::path::Path::new(path).exists() {
                return Err(format!(
                    "no Docker socket at {path} (mount it read-only, or set DOCKER_HOST)"
                ));
            }
            bollard::Docker::connect_with_unix(path, TIMEOUT_SECONDS, bollard::API_DEFAULT_VERSION)
        } else {
            bollard::Docker::connect_with_http(host, TIMEOUT_SECONDS, bollard::API_DEFAULT_VERSION)
        }
        .map_err(|error| format!("DOCKER_HOST={host}: {error}"))?;
        // The engine here may be older than bollard's API version: speak the engine's.
        let client = client
            .negotiate_version()
            .await
            .map_err(|error| format!("Docker Engine at {host} does not answer: {error}"))?;
        Ok(Self {
            client,
            project: project.to_string(),
        })
    }

    pub(crate) async fn containers(&self) -> Result<Vec<Container>, String> {
        let mut filters = HashMap::new();
        let label = if self.project.is_empty() {
            COMPOSE_SERVICE.to_string()
        } else {
            format!("{COMPOSE_PROJECT}={}", self.project)
        };
        filters.insert("label".to_string(), vec![label]);
        let summaries = self
            .client
            .list_containers(Some(ListContainersOptions {
                all: true,
                filters: Some(filters),
                ..Default::default()
            }))
            .await
            .map_err(|error| format!("listing containers: {error}"))?;
        let mut containers = Vec::new();
        for summary in summaries {
            let Some(id) = summary.id else { continue };
            // Removed between the list and the inspection: not ours to judge.
            let Ok(details) = self
                .client
                .inspect_container(&id, None::<InspectContainerOptions>)
                .await
            else {
                continue;
            };
            let state = details.state.unwrap_or_default();
            let labels = summary.labels.unwrap_or_default();
            containers.push(Container {
                name: details
                    .name
                    .unwrap_or(id)
                    .trim_start_matches('/')
                    .to_string(),
                service: labels.get(COMPOSE_SERVICE).cloned(),
                state: state
                    .status
                    .map(|status| status.to_string())
                    .unwrap_or_default(),
                health: state
                    .health
                    .and_then(|health| health.status)
                    .map(|status| status.to_string())
                    .filter(|status| !status.is_empty())
                    .unwrap_or_else(|| "none".into()),
                restart_count: details.restart_count.unwrap_or(0),
                oom_killed: state.oom_killed.unwrap_or(false),
                exit_code: state.exit_code.filter(|_| state.running != Some(true)),
            });
        }
        containers.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(containers)
    }

    pub(crate) async fn restart(&self, container: &str) -> Result<(), String> {
        self.client
            .restart_container(
                container,
                Some(RestartContainerOptions {
                    t: Some(10),
                    ..Default::default()
                }),
            )
            .await
            .map_err(|error| format!("restarting {container}: {error}"))
    }

    /// Runs `command` in `container` and returns its output (stdout and stderr), at
    /// most `timeout`.
    pub(crate) async fn exec(
        &self,
        container: &str,
        command: Vec<String>,
        timeout: Duration,
    ) -> Result<String, String> {
        let created = self
            .client
            .create_exec(
                container,
                CreateExecOptions {
                    cmd: Some(command),
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    ..Default::default()
                },
            )
            .await
            .map_err(|error| format!("exec in {container}: {error}"))?;
        let started = self
            .client
            .start_exec(&created.id, None)
            .await
            .map_err(|error| format!("exec in {container}: {error}"))?;
        let StartExecResults::Attached { mut output, .. } = started else {
            return Err(format!("exec in {container}: not attached"));
        };
        let mut text = String::new();
        let collect = async {
            while let Some(chunk) = output.next().await {
                match chunk {
                    Ok(chunk) => text.push_str(&chunk.to_string()),
                    Err(error) => return Err(format!("exec in {container}: {error}")),
                }
            }
            Ok(())
        };
        tokio::time::timeout(timeout, collect)
            .await
            .map_err(|_| format!("exec in {container}: no end within {}s", timeout.as_secs()))??;
        Ok(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container(name: &str, state: &str, health: &str, oom: bool) -> Container {
        Container {
            name: name.into(),
            service: Some(name.into()),
            state: state.into(),
            health: health.into(),
            restart_count: 0,
            oom_killed: oom,
            exit_code: (state != "running").then_some(137),
        }
    }

    #[test]
    fn stopped_unhealthy_and_oom_killed_containers_are_findings() {
        let findings = container_findings(&[
            container("a", "running", "healthy", false),
            container("b", "running", "starting", false),
            container("c", "running", "unhealthy", false),
            container("d", "exited", "none", true),
            container("e", "restarting", "none", false),
        ]);
        let found: Vec<(String, Kind, Severity)> = findings
            .iter()
            .map(|f| (f.target.clone(), f.kind, f.severity))
            .collect();
        assert_eq!(
            found,
            [
                ("c".into(), Kind::ContainerUnhealthy, Severity::Warning),
                ("d".into(), Kind::ContainerNotRunning, Severity::Critical),
                ("d".into(), Kind::ContainerOomKilled, Severity::Warning),
                ("e".into(), Kind::ContainerNotRunning, Severity::Critical),
            ]
        );
        assert_eq!(findings[1].summary, "container d is exited (exit code 137)");
    }
}
