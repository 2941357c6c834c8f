//! Service contracts (`services/<svc>/service.yaml`, `infrastructure/<name>/service.yaml`)
//! and nodes (`inventory/topology.yaml`, `hosts/<node>/…`), checked against what
//! really runs: docker-compose.yml, the Dockerfile and `.env.example`. Each check
//! returns the problems it found, in words that name the file and the field, so a
//! test can also show that a broken file is caught.

use serde::Deserialize;
use serde_norway::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Service,
    Infrastructure,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum Exposure {
    /// Reachable on the stack's network only.
    Internal,
    /// A port published on the host.
    Published,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Persistence {
    pub paths: Vec<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Runtime {
    /// Compose's `mem_limit` on the main node.
    pub memory_limit: String,
    /// A control service (watchdog, operator UI, broker): never the kernel's OOM victim.
    pub control: bool,
    pub env_vars: Vec<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Contract {
    pub name: String,
    pub description: String,
    pub kind: Kind,
    pub owner_node: String,
    pub exposure: Exposure,
    pub ports: Vec<u16>,
    pub dependencies: Vec<String>,
    /// The healthcheck command (exec form); empty: none.
    pub healthcheck: Vec<String>,
    pub restart_policy: String,
    pub profiles: Vec<String>,
    pub persistence: Persistence,
    pub runtime: Runtime,
}

/// Every `service.yaml` under `services/` and `infrastructure/`, with its path.
pub fn load_contracts(root: &Path) -> Result<Vec<(PathBuf, Contract)>, String> {
    let mut contracts = Vec::new();
    for folder in ["services", "infrastructure"] {
        let mut dirs: Vec<PathBuf> = std::fs::read_dir(root.join(folder))
            .map_err(|e| format!("{folder}/: {e}"))?
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|path| path.is_dir())
            .collect();
        dirs.sort();
        for dir in dirs {
            let path = dir.join("service.yaml");
            let shown = path
                .strip_prefix(root)
                .unwrap_or(&path)
                .display()
                .to_string();
            let text = std::fs::read_to_string(&path).map_err(|e| format!("{shown}: {e}"))?;
            let contract: Contract =
                serde_norway::from_str(&text).map_err(|e| format!("{shown}: {e}"))?;
            contracts.push((PathBuf::from(shown), contract));
        }
    }
    Ok(contracts)
}

/// docker-compose.yml with its `<<:` merge keys applied.
pub fn compose(root: &Path) -> Value {
    let text =
        std::fs::read_to_string(root.join("docker-compose.yml")).expect("docker-compose.yml");
    let mut value: Value =
        serde_norway::from_str(&text).expect("docker-compose.yml is not valid YAML");
    value.apply_merge().expect("YAML merge keys");
    value
}

/// `.env.example`'s variable names.
pub fn env_example_keys(root: &Path) -> BTreeSet<String> {
    std::fs::read_to_string(root.join(".env.example"))
        .expect(".env.example")
        .lines()
        .filter_map(|line| line.split_once('=').map(|(key, _)| key.trim()))
        .filter(|key| key.starts_with(|c: char| c.is_ascii_uppercase()))
        .map(str::to_string)
        .collect()
}

/// A Compose memory size (`32m`, `1g`) in MiB.
pub fn mebibytes(limit: &str) -> Result<f64, String> {
    let at = limit
        .find(|c: char| c.is_alphabetic())
        .unwrap_or(limit.len());
    let (number, unit) = limit.split_at(at);
    let number: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("{limit:?} is not a memory size"))?;
    Ok(match unit.to_ascii_lowercase().as_str() {
        "k" | "kb" => number / 1024.0,
        "m" | "mb" => number,
        "g" | "gb" => number * 1024.0,
        other => return Err(format!("unknown unit {other:?} in {limit:?}")),
    })
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_sequence()
        .map(|items| {
            items
                .iter()
                .filter_map(|item| match item {
                    Value::String(text) => Some(text.clone()),
                    Value::Number(number) => Some(number.to_string()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The keys of a YAML mapping (an `environment:`, a `depends_on:`); none for anything else.
pub fn keys(value: &Value) -> BTreeSet<String> {
    value
        .as_mapping()
        .map(|mapping| {
            mapping
                .keys()
                .filter_map(|key| key.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// What differs between `contract` and the Compose entry `service` (and, for a
/// service, the Dockerfile's healthcheck).
pub fn contract_problems(
    file: &str,
    contract: &Contract,
    service: &Value,
    env_example: &BTreeSet<String>,
    dockerfile_healthcheck: &[String],
) -> Vec<String> {
    let mut problems = Vec::new();
    let mut differ = |field: &str, declared: String, actual: String| {
        if declared != actual {
            problems.push(format!(
                "{file}: {field} is {declared}, docker-compose.yml says {actual}"
            ));
        }
    };
    differ(
        "restart_policy",
        contract.restart_policy.clone(),
        service["restart"].as_str().unwrap_or("none").to_string(),
    );
    differ(
        "runtime.memory_limit",
        contract.runtime.memory_limit.clone(),
        service["mem_limit"].as_str().unwrap_or("none").to_string(),
    );
    let sorted = |items: &[String]| -> Vec<String> {
        let mut items = items.to_vec();
        items.sort();
        items
    };
    differ(
        "dependencies",
        format!("{:?}", sorted(&contract.dependencies)),
        format!(
            "{:?}",
            keys(&service["depends_on"]).into_iter().collect::<Vec<_>>()
        ),
    );
    differ(
        "profiles",
        format!("{:?}", sorted(&contract.profiles)),
        format!("{:?}", sorted(&strings(&service["profiles"]))),
    );
    let published: Vec<u16> = strings(&service["ports"])
        .iter()
        .filter_map(|port| port.rsplit(':').next()?.parse().ok())
        .collect();
    differ(
        "ports",
        format!("{:?}", contract.ports),
        format!("{published:?}"),
    );
    let exposure = if published.is_empty() {
        Exposure::Internal
    } else {
        Exposure::Published
    };
    differ(
        "exposure",
        format!("{:?}", contract.exposure),
        format!("{exposure:?}"),
    );
    let healthcheck = match contract.kind {
        Kind::Service => dockerfile_healthcheck.to_vec(),
        Kind::Infrastructure => strings(&service["healthcheck"]["test"]),
    };
    differ(
        "healthcheck",
        format!("{:?}", contract.healthcheck),
        format!("{healthcheck:?}"),
    );
    // Every declared path is a named volume, and every named volume is declared.
    let volumes: BTreeSet<String> = strings(&service["volumes"])
        .iter()
        .filter(|volume| !volume.starts_with('.') && !volume.starts_with('/'))
        .filter_map(|volume| volume.split(':').nth(1).map(str::to_string))
        .collect();
    let declared: BTreeSet<String> = contract.persistence.paths.iter().cloned().collect();
    for path in declared.difference(&volumes) {
        problems.push(format!(
            "{file}: persistence path {path} is not a named volume in docker-compose.yml (its data would be lost with the container)"
        ));
    }
    for path in volumes.difference(&declared) {
        problems.push(format!(
            "{file}: the named volume at {path} is not in persistence.paths"
        ));
    }
    // Every variable the container gets is declared, and comes from somewhere.
    let environment = keys(&service["environment"]);
    let declared: BTreeSet<String> = contract.runtime.env_vars.iter().cloned().collect();
    for name in environment.difference(&declared) {
        problems.push(format!(
            "{file}: the container gets {name}, runtime.env_vars does not declare it"
        ));
    }
    for name in declared.difference(&environment) {
        problems.push(format!(
            "{file}: runtime.env_vars declares {name}, docker-compose.yml does not pass it"
        ));
    }
    for name in &declared {
        let fixed = !service["environment"][name.as_str()].is_null();
        if !fixed && !env_example.contains(name) {
            problems.push(format!(
                "{file}: {name} is passed through from .env but not in .env.example"
            ));
        }
    }
    problems
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Node {
    pub site: String,
    pub role: String,
    pub memory_mib: u32,
    /// The sum of its containers' `mem_limit` may not exceed this.
    pub budget_mib: u32,
    /// `v1` (docker-compose 1.29) or `v2` (docker compose).
    pub compose: String,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Link {
    pub from: String,
    pub to: String,
    pub kind: String,
    /// `PATTERN [in|out|both]` (both when left out), as seen from `from`: `out`
    /// goes to `to`'s broker, `in` comes from it.
    pub topics: Vec<String>,
}

/// A link's topic entry as (pattern, direction).
pub fn link_topic(entry: &str) -> Result<(&str, &str), String> {
    let mut words = entry.split_whitespace();
    let pattern = words.next().ok_or("an empty topic entry")?;
    let direction = words.next().unwrap_or("both");
    if !matches!(direction, "in" | "out" | "both") || words.next().is_some() {
        return Err(format!(
            "topic entry {entry:?}: write PATTERN followed by in, out or both"
        ));
    }
    Ok((pattern, direction))
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Topology {
    pub sites: BTreeMap<String, Value>,
    pub nodes: BTreeMap<String, Node>,
    pub links: Vec<Link>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostService {
    pub name: String,
    pub exposure: Exposure,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostServices {
    pub node: String,
    pub services: Vec<HostService>,
}

pub fn load_topology(root: &Path) -> Result<Topology, String> {
    let text = std::fs::read_to_string(root.join("inventory/topology.yaml"))
        .map_err(|e| format!("inventory/topology.yaml: {e}"))?;
    let topology: Topology =
        serde_norway::from_str(&text).map_err(|e| format!("inventory/topology.yaml: {e}"))?;
    for link in &topology.links {
        for entry in &link.topics {
            link_topic(entry).map_err(|e| {
                format!(
                    "inventory/topology.yaml: link {} -> {}: {e}",
                    link.from, link.to
                )
            })?;
        }
    }
    Ok(topology)
}

/// `hosts/<node>/services.yaml` and each service's override, as parsed YAML.
pub fn load_host(
    root: &Path,
    node: &str,
) -> Result<(HostServices, BTreeMap<String, Value>), String> {
    let listing = format!("hosts/{node}/services.yaml");
    let text =
        std::fs::read_to_string(root.join(&listing)).map_err(|e| format!("{listing}: {e}"))?;
    let host: HostServices =
        serde_norway::from_str(&text).map_err(|e| format!("{listing}: {e}"))?;
    let mut overrides = BTreeMap::new();
    for service in &host.services {
        let file = format!(
            "hosts/{node}/runtime/{}/docker-compose.override.yml",
            service.name
        );
        let text = std::fs::read_to_string(root.join(&file)).map_err(|e| format!("{file}: {e}"))?;
        let value: Value = serde_norway::from_str(&text).map_err(|e| format!("{file}: {e}"))?;
        overrides.insert(service.name.clone(), value);
    }
    Ok((host, overrides))
}

/// The sum of a node's `mem_limit`s in MiB, and what is wrong with the node.
pub fn node_problems(
    name: &str,
    node: &Node,
    host: &HostServices,
    overrides: &BTreeMap<String, Value>,
    contracts: &BTreeMap<String, Contract>,
) -> (f64, Vec<String>) {
    let mut problems = Vec::new();
    let mut total = 0.0;
    if host.node != name {
        problems.push(format!(
            "hosts/{name}/services.yaml: node is {:?}, not {name:?}",
            host.node
        ));
    }
    for service in &host.services {
        let file = format!(
            "hosts/{name}/runtime/{}/docker-compose.override.yml",
            service.name
        );
        let Some(contract) = contracts.get(&service.name) else {
            problems.push(format!(
                "hosts/{name}/services.yaml: {} has no service.yaml",
                service.name
            ));
            continue;
        };
        if service.exposure != contract.exposure {
            problems.push(format!(
                "hosts/{name}/services.yaml: {} is {:?} here but {:?} in its contract",
                service.name, service.exposure, contract.exposure
            ));
        }
        let Some(entry) = overrides.get(&service.name) else {
            problems.push(format!("{file}: missing"));
            continue;
        };
        let entry = &entry["services"][service.name.as_str()];
        if entry.is_null() {
            problems.push(format!("{file}: no services.{} entry", service.name));
            continue;
        }
        if !entry["deploy"].is_null() {
            problems.push(format!(
                "{file}: deploy: needs Swarm; use top-level mem_limit and oom_score_adj"
            ));
        }
        match entry["mem_limit"].as_str().map(mebibytes) {
            Some(Ok(mib)) => total += mib,
            Some(Err(error)) => problems.push(format!("{file}: mem_limit {error}")),
            None => problems.push(format!("{file}: no mem_limit")),
        }
        if contract.runtime.control && entry["oom_score_adj"].as_i64() != Some(-900) {
            problems.push(format!(
                "{file}: {} is a control service and needs oom_score_adj: -900",
                service.name
            ));
        }
    }
    if total > f64::from(node.budget_mib) {
        problems.push(format!(
            "node {name}: the mem_limits add up to {total:.0} MiB, over its budget of {} MiB",
            node.budget_mib
        ));
    }
    (total, problems)
}

/// The mosquitto bridge lines node `name` needs: one connection per link from it in
/// the topology, QoS 1 both ways, a persistent session (`cleansession false`) so the
/// node's broker queues what its services publish while the link is down and sends
/// it when the link is back. `address_of` gives a node's broker `host:port`.
pub fn bridge_config(
    topology: &Topology,
    name: &str,
    address_of: impl Fn(&str) -> String,
) -> String {
    let mut out = String::new();
    for link in topology.links.iter().filter(|link| link.from == name) {
        if link.kind != "mqtt-bridge" {
            continue;
        }
        out.push_str(&format!(
            "\n# Generated from inventory/topology.yaml: {from} -> {to}. Do not edit.\n\
             connection {from}-to-{to}\n\
             address {address}\n\
             bridge_protocol_version mqttv311\n\
             cleansession false\n\
             local_clientid bridge-{from}-to-{to}\n\
             remote_clientid bridge-{from}-at-{to}\n\
             try_private true\n\
             restart_timeout 1 30\n\
             keepalive_interval 30\n",
            from = link.from,
            to = link.to,
            address = address_of(&link.to),
        ));
        for entry in &link.topics {
            // load_topology refused bad entries.
            if let Ok((pattern, direction)) = link_topic(entry) {
                out.push_str(&format!("topic {pattern} {direction} 1\n"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::link_topic;

    #[test]
    fn a_link_topic_has_a_pattern_and_a_direction() {
        assert_eq!(link_topic("homelab/#"), Ok(("homelab/#", "both")));
        assert_eq!(
            link_topic("homeassistant/+/+/+/config out"),
            Ok(("homeassistant/+/+/+/config", "out"))
        );
        let error = link_topic("homelab/# sideways").unwrap_err();
        assert!(error.contains("in, out or both"), "{error}");
        assert!(link_topic("  ").is_err());
    }
}
