//! The service contracts and the nodes are true: each `service.yaml` agrees with
//! docker-compose.yml, the Dockerfile and `.env.example`; each node's overrides fit
//! its memory budget and keep its control services out of the OOM killer's reach.
//! The same checks are shown to catch a broken file.

use repo_checks::contracts::{
    compose, contract_problems, env_example_keys, load_contracts, load_host, load_topology,
    node_problems, Contract,
};
use repo_checks::{exec_form, parse_dockerfile, repo_root, service_names, split_flags};
use serde_norway::Value;
use std::collections::{BTreeMap, BTreeSet};

/// The Dockerfile's HEALTHCHECK command, which every service image carries.
fn dockerfile_healthcheck() -> Vec<String> {
    let text = std::fs::read_to_string(repo_root().join("Dockerfile")).unwrap();
    let instruction = parse_dockerfile(&text)
        .into_iter()
        .rfind(|i| i.keyword == "HEALTHCHECK")
        .expect("a HEALTHCHECK");
    let (_, command) = split_flags(&instruction.arguments);
    exec_form(command.strip_prefix("CMD ").unwrap()).unwrap()
}

fn contracts() -> BTreeMap<String, (String, Contract)> {
    load_contracts(&repo_root())
        .unwrap()
        .into_iter()
        .map(|(path, contract)| {
            (
                contract.name.clone(),
                (path.display().to_string(), contract),
            )
        })
        .collect()
}

#[test]
fn every_service_and_the_infrastructure_have_a_contract_that_is_true() {
    let root = repo_root();
    let compose = compose(&root);
    let services = compose["services"].as_mapping().unwrap();
    let contracts = contracts();
    let in_compose: BTreeSet<String> = services
        .keys()
        .filter_map(|key| key.as_str().map(str::to_string))
        .collect();
    let contracted: BTreeSet<String> = contracts.keys().cloned().collect();
    assert_eq!(contracted, in_compose, "one contract per Compose service");
    for name in service_names() {
        assert_eq!(
            contracts[&name].0,
            format!("services/{name}/service.yaml"),
            "a service's contract sits in its folder"
        );
    }
    let topology = load_topology(&root).unwrap();
    let env_example = env_example_keys(&root);
    let healthcheck = dockerfile_healthcheck();
    let mut problems = Vec::new();
    for (name, (file, contract)) in &contracts {
        problems.extend(contract_problems(
            file,
            contract,
            &services[name.as_str()],
            &env_example,
            &healthcheck,
        ));
        if !topology.nodes.contains_key(&contract.owner_node) {
            problems.push(format!(
                "{file}: owner_node {} is not in inventory/topology.yaml",
                contract.owner_node
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn a_contract_that_drifts_from_compose_is_caught_by_name() {
    let root = repo_root();
    let compose = compose(&root);
    let (file, mut contract) = contracts()["pv-forecast"].clone();
    contract
        .runtime
        .env_vars
        .retain(|name| name != "PV_FORECAST_ARRAYS");
    contract.runtime.env_vars.push("PV_FORECAST_LEGACY".into());
    contract.persistence.paths.push("/app/cache".into());
    contract.runtime.memory_limit = "64m".into();
    let problems = contract_problems(
        &file,
        &contract,
        &compose["services"]["pv-forecast"],
        &env_example_keys(&root),
        &dockerfile_healthcheck(),
    );
    for expected in [
        "services/pv-forecast/service.yaml: the container gets PV_FORECAST_ARRAYS, runtime.env_vars does not declare it",
        "services/pv-forecast/service.yaml: runtime.env_vars declares PV_FORECAST_LEGACY, docker-compose.yml does not pass it",
        "services/pv-forecast/service.yaml: persistence path /app/cache is not a named volume in docker-compose.yml (its data would be lost with the container)",
        "services/pv-forecast/service.yaml: runtime.memory_limit is 64m, docker-compose.yml says 32m",
    ] {
        assert!(problems.iter().any(|p| p == expected), "{expected}\nnot in {problems:#?}");
    }
}

#[test]
fn every_node_fits_its_budget_and_shields_its_control_services() {
    let root = repo_root();
    let topology = load_topology(&root).unwrap();
    let contracts: BTreeMap<String, Contract> = contracts()
        .into_iter()
        .map(|(name, (_, c))| (name, c))
        .collect();
    let mut problems = Vec::new();
    for (name, node) in &topology.nodes {
        let (host, overrides) = load_host(&root, name).unwrap();
        let (total, found) = node_problems(name, node, &host, &overrides, &contracts);
        println!("{name}: {total:.0} of {} MiB", node.budget_mib);
        problems.extend(found);
    }
    for link in &topology.links {
        for end in [&link.from, &link.to] {
            if !topology.nodes.contains_key(end) {
                problems.push(format!(
                    "inventory/topology.yaml: link to unknown node {end}"
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn an_override_over_budget_or_a_control_service_without_oom_shield_fails() {
    let root = repo_root();
    let topology = load_topology(&root).unwrap();
    let contracts: BTreeMap<String, Contract> = contracts()
        .into_iter()
        .map(|(name, (_, c))| (name, c))
        .collect();
    let (host, mut overrides) = load_host(&root, "vps").unwrap();
    let dashboard = overrides.get_mut("dashboard").unwrap();
    dashboard["services"]["dashboard"]["mem_limit"] = Value::String("4g".into());
    dashboard["services"]["dashboard"]["oom_score_adj"] = Value::from(0);
    let (total, problems) =
        node_problems("vps", &topology.nodes["vps"], &host, &overrides, &contracts);
    assert!(total > 3200.0);
    assert!(
        problems.contains(&format!(
            "node vps: the mem_limits add up to {total:.0} MiB, over its budget of 3200 MiB"
        )),
        "{problems:#?}"
    );
    assert!(
        problems.contains(
            &"hosts/vps/runtime/dashboard/docker-compose.override.yml: dashboard is a control service and needs oom_score_adj: -900".to_string()
        ),
        "{problems:#?}"
    );
}
