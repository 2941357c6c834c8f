//! `cargo run -p repo-checks --bin node-check -- NODE`: whether NODE's services and
//! overrides (hosts/NODE/) fit its memory budget in inventory/topology.yaml and shield
//! its control services from the OOM killer. Prints the sum, or each problem and
//! exits 1. scripts/deploy-node.sh runs it in its validate stage.

use repo_checks::contracts::{load_contracts, load_host, load_topology, node_problems};
use std::process::ExitCode;

fn main() -> ExitCode {
    let Some(node) = std::env::args().nth(1) else {
        eprintln!("usage: node-check NODE");
        return ExitCode::from(2);
    };
    // The checkout it runs in (deploy-node.sh runs it from the repository's root),
    // else the one it was built from.
    let here = std::env::current_dir().unwrap_or_default();
    let root = if here.join("inventory/topology.yaml").is_file() {
        here
    } else {
        repo_checks::repo_root()
    };
    let checked = (|| -> Result<(f64, u32, Vec<String>), String> {
        let topology = load_topology(&root)?;
        let spec = topology.nodes.get(&node).ok_or_else(|| {
            let known: Vec<&str> = topology.nodes.keys().map(String::as_str).collect();
            format!(
                "no node {node:?} in inventory/topology.yaml (nodes: {})",
                known.join(", ")
            )
        })?;
        let contracts = load_contracts(&root)?
            .into_iter()
            .map(|(_, contract)| (contract.name.clone(), contract))
            .collect();
        let (host, overrides) = load_host(&root, &node)?;
        let (total, problems) = node_problems(&node, spec, &host, &overrides, &contracts);
        Ok((total, spec.budget_mib, problems))
    })();
    match checked {
        Ok((total, budget, problems)) if problems.is_empty() => {
            println!("node {node}: mem_limits add up to {total:.0} MiB of its {budget} MiB budget; control services shielded");
            ExitCode::SUCCESS
        }
        Ok((_, _, problems)) => {
            for problem in problems {
                eprintln!("node-check: {problem}");
            }
            ExitCode::FAILURE
        }
        Err(error) => {
            eprintln!("node-check: {error}");
            ExitCode::from(2)
        }
    }
}
