//! `cargo run -p repo-checks --bin bridge-config -- NODE REMOTE=HOST:PORT…`: prints the
//! mosquitto bridge lines NODE's broker needs, from inventory/topology.yaml, for its
//! mosquitto.conf (credentials, when the remote broker wants them, go beside them:
//! `remote_username` / `remote_password`).

use repo_checks::contracts::{bridge_config, load_topology};
use std::collections::BTreeMap;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(node) = args.next() else {
        eprintln!("usage: bridge-config NODE REMOTE=HOST:PORT... (e.g. bridge-config edge main=10.0.0.2:1883)");
        return ExitCode::from(2);
    };
    let mut addresses = BTreeMap::new();
    for arg in args {
        let Some((name, address)) = arg.split_once('=') else {
            eprintln!("bridge-config: {arg:?} is not NODE=HOST:PORT");
            return ExitCode::from(2);
        };
        addresses.insert(name.to_string(), address.to_string());
    }
    let topology = match load_topology(&repo_checks::repo_root()) {
        Ok(topology) => topology,
        Err(error) => {
            eprintln!("bridge-config: {error}");
            return ExitCode::from(2);
        }
    };
    if !topology.nodes.contains_key(&node) {
        eprintln!(
            "bridge-config: no node {node:?} in inventory/topology.yaml (nodes: {})",
            topology
                .nodes
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        );
        return ExitCode::from(2);
    }
    let missing: Vec<&String> = topology
        .links
        .iter()
        .filter(|link| link.from == node && !addresses.contains_key(&link.to))
        .map(|link| &link.to)
        .collect();
    if !missing.is_empty() {
        eprintln!("bridge-config: give the address of {missing:?} as NODE=HOST:PORT");
        return ExitCode::from(2);
    }
    print!(
        "{}",
        bridge_config(&topology, &node, |to| addresses[to].clone())
    );
    ExitCode::SUCCESS
}
