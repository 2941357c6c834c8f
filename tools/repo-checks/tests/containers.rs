//! The Dockerfiles and docker-compose.yml, checked statically for rules a working build
//! would not show (every service folder in Compose, hardening on every entry). That the
//! images build and the stack runs is scripts/test-compose.sh's job.

use repo_checks::contracts::{compose, env_example_keys, keys, mebibytes};
use repo_checks::{
    exec_form, parse_dockerfile, repo_root, service_names, split_flags, Instruction,
};
use serde_norway::Value;
use std::collections::BTreeSet;

fn dockerfile(path: &str) -> Vec<Instruction> {
    let text = std::fs::read_to_string(repo_root().join(path))
        .unwrap_or_else(|_| panic!("{path} missing"));
    parse_dockerfile(&text)
}

fn last_stage(instructions: &[Instruction]) -> Vec<&Instruction> {
    let last = instructions.iter().map(|i| i.stage).max().unwrap();
    instructions.iter().filter(|i| i.stage == last).collect()
}

#[test]
fn the_base_image_has_chef_planner_and_cook_stages() {
    let base = dockerfile("base/Dockerfile");
    let froms: Vec<&str> = base
        .iter()
        .filter(|i| i.keyword == "FROM")
        .map(|i| i.arguments.as_str())
        .collect();
    assert!(
        froms[0].starts_with("rust:") && froms[0].ends_with(" AS chef"),
        "{froms:?}"
    );
    assert!(
        froms.contains(&"chef AS planner") && froms.contains(&"chef AS base"),
        "{froms:?}"
    );
    let runs: Vec<&str> = base
        .iter()
        .filter(|i| i.keyword == "RUN")
        .map(|i| i.arguments.as_str())
        .collect();
    assert!(runs
        .iter()
        .any(|run| run.contains("cargo install cargo-chef --locked")));
    assert!(runs.iter().any(|run| run.contains("cargo chef prepare")));
    assert!(runs
        .iter()
        .any(|run| run.contains("cargo chef cook --release")));
    // The same WORKDIR in every stage comes from the chef stage they all start from.
    assert!(base
        .iter()
        .any(|i| i.keyword == "WORKDIR" && i.arguments == "/app" && i.stage == 0));
    let script = std::fs::read_to_string(repo_root().join("scripts/build-base.sh")).unwrap();
    assert!(script.contains("--tag homelab-base:latest") && script.contains("base/Dockerfile"));
}

#[test]
fn the_service_dockerfile_is_chef_built_distroless_nonroot_and_checks_itself() {
    // scripts/test-compose.sh builds and runs it; these are the rules a build that
    // happens to work would not show.
    let path = "Dockerfile";
    let file = dockerfile(path);
    let froms: Vec<&Instruction> = file.iter().filter(|i| i.keyword == "FROM").collect();
    assert!(
        froms[..froms.len() - 1].iter().all(|from| {
            from.arguments.starts_with("homelab-base:latest")
                || from.arguments == "builder AS picked"
        }),
        "{path}: build stages must start FROM homelab-base:latest"
    );
    let runs: Vec<&str> = file
        .iter()
        .filter(|i| i.keyword == "RUN")
        .map(|i| i.arguments.as_str())
        .collect();
    assert!(
        runs.iter()
            .any(|run| run.contains("cargo chef cook --release")),
        "{path}: no cook"
    );
    assert!(
        runs.iter()
            .any(|run| run.contains("cargo build --release --locked")),
        "{path}: must build in release from the lockfile"
    );
    // SERVICE is read only after the shared build, so every image reuses that layer.
    let service_arg = file
        .iter()
        .position(|i| i.keyword == "ARG" && i.arguments == "SERVICE")
        .expect("ARG SERVICE");
    let build = file
        .iter()
        .position(|i| i.keyword == "RUN" && i.arguments.contains("cargo build"))
        .unwrap();
    assert!(build < service_arg, "{path}: ARG SERVICE before the build");

    let runtime = last_stage(&file);
    let image = &runtime[0].arguments;
    assert!(
        image.starts_with("gcr.io/distroless/") && image.ends_with(":nonroot"),
        "{path}: runtime {image} is not distroless nonroot"
    );
    let find = |keyword: &str| {
        runtime
            .iter()
            .find(|i| i.keyword == keyword)
            .map(|i| i.arguments.clone())
    };
    assert_eq!(find("USER").as_deref(), Some("nonroot"), "{path}");
    assert_eq!(find("WORKDIR").as_deref(), Some("/app"), "{path}");
    assert!(
        runtime.iter().all(|i| i.keyword != "RUN"),
        "{path}: distroless has no shell to RUN"
    );
    let (_, command) =
        split_flags(&find("HEALTHCHECK").unwrap_or_else(|| panic!("{path}: no HEALTHCHECK")));
    let check =
        exec_form(command.strip_prefix("CMD ").expect("HEALTHCHECK CMD")).expect("exec form");
    assert_eq!(check, ["/app/service", "healthcheck"], "{path}");
    let entrypoint =
        exec_form(&find("ENTRYPOINT").expect("ENTRYPOINT")).expect("exec-form ENTRYPOINT");
    assert_eq!(entrypoint, ["/app/service"], "{path}");
    assert!(
        runtime.iter().any(|i| i.keyword == "COPY"
            && i.arguments.contains("--chown=65532:65532")
            && i.arguments.ends_with("/app/data")),
        "{path}: /app/data must belong to nonroot (uid 65532)"
    );
}

#[test]
fn no_dockerfile_pulls_a_buildkit_frontend() {
    // `# syntax=` makes BuildKit pull an image: impossible without a registry.
    for path in ["Dockerfile", "base/Dockerfile"] {
        let text = std::fs::read_to_string(repo_root().join(path)).unwrap();
        assert!(
            !text.lines().any(|line| line.starts_with("# syntax=")),
            "{path} has a # syntax= line"
        );
    }
}

#[test]
fn the_build_context_keeps_secrets_and_build_output_out() {
    let ignore = std::fs::read_to_string(repo_root().join(".dockerignore")).unwrap();
    let lines: BTreeSet<&str> = ignore.lines().map(str::trim).collect();
    for needed in ["target/", ".env", ".sops/", ".git/"] {
        assert!(lines.contains(needed), ".dockerignore lacks {needed}");
    }
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_sequence()
        .map(|items| {
            items
                .iter()
                .filter_map(|item| item.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn every_service_folder_has_a_hardened_compose_entry_and_vice_versa() {
    let compose = compose(&repo_root());
    let services = compose["services"].as_mapping().expect("services");
    let declared_volumes = compose["volumes"].as_mapping().expect("volumes");
    let infrastructure: BTreeSet<&str> = ["mqtt", "influxdb", "jaeger"].into();
    let in_compose: BTreeSet<String> = services
        .keys()
        .filter_map(|key| key.as_str())
        .filter(|name| !infrastructure.contains(name))
        .map(str::to_string)
        .collect();
    let folders: BTreeSet<String> = service_names().into_iter().collect();
    assert_eq!(
        in_compose, folders,
        "compose services and services/ folders differ"
    );

    for name in &folders {
        let service = &services[name.as_str()];
        let at = |key: &str| &service[key];
        assert_eq!(
            at("build")["context"].as_str(),
            Some("."),
            "{name}: build context = repo root"
        );
        assert_eq!(
            at("build")["args"]["SERVICE"].as_str(),
            Some(name.as_str()),
            "{name}: the Dockerfile builds the service named by SERVICE"
        );
        assert!(
            service.get("env_file").is_none(),
            "{name}: env_file would hand it the whole .env, every other service's secrets"
        );
        // Its own broker identity, which the broker's ACL lets publish only as itself.
        let environment = at("environment");
        assert_eq!(environment["MQTT_HOST"].as_str(), Some("mqtt"), "{name}");
        assert_eq!(
            environment["MQTT_USERNAME"].as_str(),
            Some(name.as_str()),
            "{name}"
        );
        let password_var = format!("MQTT_PASSWORD_{}", name.to_uppercase().replace('-', "_"));
        assert!(
            environment["MQTT_PASSWORD"]
                .as_str()
                .is_some_and(|value| value.starts_with(&format!("${{{password_var}:?"))),
            "{name}: MQTT_PASSWORD must come from {password_var}, required"
        );
        let example = std::fs::read_to_string(repo_root().join(".env.example")).unwrap();
        assert!(
            example.contains(&format!("\n{password_var}=")),
            "{name}: {password_var} is not in .env.example"
        );
        assert_eq!(at("restart").as_str(), Some("unless-stopped"), "{name}");
        assert_eq!(at("read_only").as_bool(), Some(true), "{name}");
        assert!(
            strings(at("tmpfs")).contains(&"/tmp".to_string()),
            "{name}: tmpfs /tmp"
        );
        assert!(
            strings(at("security_opt")).contains(&"no-new-privileges:true".to_string()),
            "{name}"
        );
        assert_eq!(strings(at("networks")), ["homelab"], "{name}");
        assert_eq!(
            at("depends_on")["mqtt"]["condition"].as_str(),
            Some("service_healthy"),
            "{name}"
        );
        let limit = at("mem_limit")
            .as_str()
            .unwrap_or_else(|| panic!("{name}: no mem_limit"));
        assert!(
            mebibytes(limit).unwrap() <= 256.0,
            "{name}: mem_limit {limit} is not small"
        );
        let data_volume = strings(at("volumes"))
            .into_iter()
            .find(|volume| volume.ends_with(":/app/data"))
            .unwrap_or_else(|| panic!("{name}: no volume at /app/data"));
        let volume_name = data_volume.trim_end_matches(":/app/data");
        assert!(
            declared_volumes.contains_key(volume_name),
            "{name}: /app/data must be a named volume, {volume_name} is not declared"
        );
        if name != "dashboard" {
            assert!(
                service.get("ports").is_none(),
                "{name} publishes ports; only the dashboard may"
            );
        }
    }
}

fn environment_keys(service: &Value) -> BTreeSet<String> {
    keys(&service["environment"])
}

/// Each container gets the variables it reads, and no other: a service holds no other
/// identity's broker password, the broker no HA token, InfluxDB no broker password.
#[test]
fn each_container_gets_only_its_own_variables_and_every_variable_reaches_its_reader() {
    let compose = compose(&repo_root());
    let services = compose["services"].as_mapping().unwrap();
    let keys = env_example_keys(&repo_root());
    let passwords: Vec<&String> = keys
        .iter()
        .filter(|key| key.starts_with("MQTT_PASSWORD_"))
        .collect();
    for (name, service) in services {
        let name = name.as_str().unwrap();
        assert!(service.get("env_file").is_none(), "{name} has env_file");
        let environment = environment_keys(service);
        if name == "mqtt" {
            for password in &passwords {
                assert!(
                    environment.contains(password.as_str()),
                    "mqtt: {password} must reach the broker (entrypoint.sh makes the identity)"
                );
            }
            assert!(!environment.contains("HA_TOKEN"), "mqtt gets HA_TOKEN");
            continue;
        }
        for key in &environment {
            assert!(
                !key.starts_with("MQTT_PASSWORD_"),
                "{name} gets {key}, another identity's broker password"
            );
            assert!(
                name == "influxdb" || !key.starts_with("DOCKER_INFLUXDB_INIT_"),
                "{name} gets InfluxDB's admin setup {key}"
            );
        }
        assert!(
            name != "influxdb" || !environment.contains("MQTT_PASSWORD"),
            "influxdb gets the broker password"
        );
    }
    // Read by Compose itself, fixed in docker-compose.yml for containers, or (the client
    // id) left to each service's own name: one shared id would make services take over
    // each other's broker session.
    let not_for_containers = [
        "COMPOSE_PROJECT_NAME",
        "DOCKER_GID",
        "MQTT_HOST",
        "MQTT_CLIENT_ID",
        "LOG_FORMAT",
        "DATA_DIR",
        "SIM_BIND",
    ];
    // Compose's own settings for every container (log rotation), not a container's.
    let read_by_compose = ["LOG_MAX_SIZE", "LOG_MAX_FILES"];
    let compose_text = std::fs::read_to_string(repo_root().join("docker-compose.yml")).unwrap();
    for key in read_by_compose {
        assert!(
            compose_text.contains(&format!("${{{key}:-")),
            "docker-compose.yml does not read {key} (log rotation)"
        );
    }
    for key in keys.iter().filter(|key| {
        !not_for_containers.contains(&key.as_str()) && !read_by_compose.contains(&key.as_str())
    }) {
        assert!(
            services
                .values()
                .any(|service| environment_keys(service).contains(key.as_str())),
            "{key} is in .env.example but no container in docker-compose.yml receives it"
        );
    }
}

#[test]
fn the_infrastructure_services_are_configured_as_documented() {
    let compose = compose(&repo_root());
    let services = &compose["services"];
    assert!(
        compose.get("name").is_none(),
        "docker-compose 1.29 rejects a top-level name: (COMPOSE_PROJECT_NAME in .env names the project)"
    );
    let mqtt = &services["mqtt"];
    assert_eq!(mqtt["image"].as_str(), Some("eclipse-mosquitto:2"));
    assert_eq!(mqtt["read_only"].as_bool(), Some(true));
    assert!(
        mqtt.get("healthcheck").is_some(),
        "mqtt needs a healthcheck for depends_on"
    );
    assert!(mqtt.get("ports").is_none());
    assert!(strings(&mqtt["volumes"])
        .iter()
        .any(|v| v.starts_with("./infrastructure/mosquitto/mosquitto.conf:")));
    assert_eq!(strings(&services["influxdb"]["profiles"]), ["influxdb"]);
    assert!(services["influxdb"]["image"]
        .as_str()
        .unwrap()
        .starts_with("influxdb:2"));
    assert_eq!(strings(&services["jaeger"]["profiles"]), ["tracing"]);
    assert!(strings(&services["jaeger"]["expose"]).contains(&"4317".to_string()));
    assert_eq!(
        services["jaeger"]["environment"]["COLLECTOR_OTLP_ENABLED"].as_str(),
        Some("true")
    );
    for (name, service) in services.as_mapping().unwrap() {
        assert_eq!(
            strings(&service["networks"]),
            ["homelab"],
            "{name:?} must be on the homelab network"
        );
        // Docker's json-file driver keeps every line forever unless told otherwise.
        let logging = &service["logging"];
        assert_eq!(logging["driver"].as_str(), Some("json-file"), "{name:?}");
        for option in ["max-size", "max-file"] {
            assert!(
                logging["options"][option].as_str().is_some(),
                "{name:?}: its log must be rotated ({option})"
            );
        }
    }
    assert_eq!(
        compose["networks"]["homelab"]["driver"].as_str(),
        Some("bridge")
    );

    let conf = std::fs::read_to_string(repo_root().join("infrastructure/mosquitto/mosquitto.conf"))
        .unwrap();
    assert!(conf
        .lines()
        .any(|line| line.trim() == "allow_anonymous false"));
    assert!(conf.lines().any(|line| line.trim() == "persistence true"));
}

#[test]
fn the_dev_override_is_valid_and_publishes_only_to_loopback() {
    let text =
        std::fs::read_to_string(repo_root().join("docker-compose.override.example.yml")).unwrap();
    let value: Value = serde_norway::from_str(&text).unwrap();
    let compose = compose(&repo_root());
    for (name, service) in value["services"].as_mapping().unwrap() {
        assert!(
            compose["services"].get(name).is_some(),
            "override names unknown service {name:?}"
        );
        for port in strings(&service["ports"]) {
            assert!(
                port.starts_with("127.0.0.1:"),
                "{name:?}: {port} should bind to loopback"
            );
        }
    }
    assert!(
        text.contains("LOG_LEVEL: debug")
            && text.contains("16686")
            && text.contains("cargo run -p")
    );
}
