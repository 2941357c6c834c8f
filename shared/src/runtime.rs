//! `homelab::run::<S>()`: the CLI and the life of a service process.
//!
//! run: settings → logging → MQTT (background) → heartbeat → `S::run` until it
//! returns or a signal (then at most a 10 s grace) → `offline` → DISCONNECT → exit.

use crate::diagnose::{self, Check, Step};
use crate::heartbeat;
use crate::http::{HealthSlot, HttpState};
use crate::mqtt::{Mqtt, MqttConfig, QoS};
use crate::service::{Context, Service};
use crate::settings::{self, Settings, SettingsError};
use crate::{health, logging, shutdown};
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// How long `run` may take to return after a shutdown signal.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// Exit code for bad settings (and bad diagnose arguments).
pub const EXIT_BAD_SETTINGS: u8 = 2;

#[derive(Parser, Debug)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the service (the default).
    Run,
    /// Check settings and every dependency, one step at a time.
    Diagnose {
        /// Run only this step (repeatable); `config` always runs first.
        #[arg(long = "step", value_name = "NAME")]
        steps: Vec<String>,
        /// Print one JSON document instead of lines.
        #[arg(long)]
        json: bool,
    },
    /// Exit 0 when the last successful cycle is recent (Docker HEALTHCHECK).
    Healthcheck,
    /// List the environment variables this service reads, one per line.
    Settings,
}

/// The whole `main` of a service.
pub fn run<S: Service>() -> ExitCode {
    let matches = cli_command::<S>().get_matches();
    run_matches::<S>(&matches)
}

/// `run`, plus the service's own offline subcommands `T` (e.g. `pv-forecast backtest`),
/// which `tool` runs without MQTT, logging set-up or settings beyond what it reads itself.
pub fn run_with_tools<S: Service, T: Subcommand + FromArgMatches>(
    tool: impl FnOnce(T) -> ExitCode,
) -> ExitCode {
    let matches = T::augment_subcommands(cli_command::<S>()).get_matches();
    match matches.subcommand_name() {
        Some(name) if T::has_subcommand(name) => {
            tool(T::from_arg_matches(&matches).unwrap_or_else(|error| error.exit()))
        }
        _ => run_matches::<S>(&matches),
    }
}

fn cli_command<S: Service>() -> clap::Command {
    let command = Cli::command()
        .name(S::NAME)
        .bin_name(S::NAME)
        .version(S::VERSION);
    if S::ABOUT.is_empty() {
        command
    } else {
        command.about(S::ABOUT)
    }
}

fn run_matches<S: Service>(matches: &clap::ArgMatches) -> ExitCode {
    let cli = Cli::from_arg_matches(matches).unwrap_or_else(|error| error.exit());
    match cli.command.unwrap_or(Command::Run) {
        Command::Healthcheck => healthcheck::<S>(),
        Command::Diagnose { steps, json } => diagnose::<S>(&steps, json),
        Command::Run => serve_main::<S>(),
        Command::Settings => {
            for name in settings::variable_names::<settings::CommonSettings>()
                .into_iter()
                .chain(settings::variable_names::<S::Settings>())
            {
                println!("{name}");
            }
            ExitCode::SUCCESS
        }
    }
}

fn tokio_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("cannot start the tokio runtime")
}

fn bad_settings(service: &str, error: &SettingsError) -> ExitCode {
    eprintln!("{service}: {error}");
    ExitCode::from(EXIT_BAD_SETTINGS)
}

/// Docker treats 0 as healthy and 1 as unhealthy; the tracing set-up is skipped on purpose.
fn healthcheck<S: Service>() -> ExitCode {
    let settings = match settings::load::<S::Settings>() {
        Ok(settings) => settings,
        Err(error) => {
            println!("unhealthy: {error}");
            return ExitCode::FAILURE;
        }
    };
    let max_age = Duration::from_secs(settings.common.healthcheck_max_age_seconds);
    match health::check(&settings.common.data_dir, max_age) {
        Ok(age) => {
            println!("healthy: last success {}s ago", age.as_secs());
            ExitCode::SUCCESS
        }
        Err(reason) => {
            println!("unhealthy: {reason}");
            ExitCode::FAILURE
        }
    }
}

fn diagnose<S: Service>(wanted: &[String], json: bool) -> ExitCode {
    let started = Instant::now();
    let loaded = settings::load::<S::Settings>();
    let config_took = started.elapsed();
    let (config, steps) = match &loaded {
        Ok(settings) => {
            let mut steps = vec![diagnose::mqtt_step(S::NAME, &settings.common)];
            if S::uses_home_assistant(settings) {
                steps.extend(crate::ha::diagnose_steps(&settings.common));
            }
            if S::uses_influx(settings) {
                steps.push(crate::influx::diagnose_step(&settings.common));
            }
            steps.extend(S::diagnose_steps(settings));
            (Check::pass(settings.common.summary()), steps)
        }
        Err(error) => (Check::fail(error.to_string()), Vec::new()),
    };
    let known: Vec<String> = std::iter::once("config".to_string())
        .chain(steps.iter().map(|step| step.name().to_string()))
        .collect();
    if loaded.is_ok() {
        if let Some(unknown) = wanted.iter().find(|name| !known.contains(name)) {
            eprintln!(
                "{}: unknown diagnose step {unknown:?}; steps: {}",
                S::NAME,
                known.join(", ")
            );
            return ExitCode::from(EXIT_BAD_SETTINGS);
        }
    }
    let selected: Vec<Step> = steps
        .into_iter()
        .filter(|step| wanted.is_empty() || wanted.iter().any(|name| name == step.name()))
        .collect();
    let report = tokio_runtime().block_on(diagnose::run(
        S::NAME,
        S::VERSION,
        (config, config_took),
        selected,
    ));
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("a report always serializes")
        );
    } else {
        let colour = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        print!("{}", diagnose::render_text(&report, colour));
    }
    if report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn serve_main<S: Service>() -> ExitCode {
    let settings = match settings::load::<S::Settings>() {
        Ok(settings) => settings,
        Err(error) => return bad_settings(S::NAME, &error),
    };
    let runtime = tokio_runtime();
    // Inside the runtime: the OTLP exporter (tonic) needs its reactor.
    let started = runtime.block_on(async {
        let guard = logging::init(
            S::NAME,
            &settings.common.log_level,
            settings.common.log_format,
            Some(settings.common.otel_exporter_otlp_endpoint.as_str()),
        )?;
        Ok::<_, SettingsError>((serve::<S>(settings).await, guard))
    });
    match started {
        // The guard flushes the last spans here, while the runtime's workers still run.
        Ok((code, guard)) => {
            drop(guard);
            code
        }
        Err(error) => bad_settings(S::NAME, &error),
    }
}

/// Runs one service until it ends or is told to stop; returns the process exit code.
pub async fn serve<S: Service>(settings: Settings<S::Settings>) -> ExitCode {
    let started = Instant::now();
    let shutdown = CancellationToken::new();
    shutdown::cancel_on_signal(shutdown.clone());
    tracing::info!(
        version = S::VERSION,
        settings = %settings.common.summary(),
        "service_starting"
    );
    let heartbeat_every = settings.common.heartbeat_interval_seconds;
    let uses_home_assistant = S::uses_home_assistant(&settings);
    let integrations = integrations::<S>(&settings);
    let mqtt = Mqtt::connect(&MqttConfig::for_service(
        S::NAME,
        S::VERSION,
        &settings.common,
    ));
    let http = (settings.common.http_port > 0).then(|| HttpState {
        service: S::NAME,
        version: S::VERSION,
        started,
        data_dir: settings.common.data_dir.clone(),
        healthcheck_max_age: Duration::from_secs(settings.common.healthcheck_max_age_seconds),
        mqtt: mqtt.clone(),
        ha: None,
        influx: None,
        health: HealthSlot::default(),
    });
    let health_slot = http.as_ref().map(|state| state.health.clone());
    let http_port = settings.common.http_port;
    let ctx = Context::new(S::NAME, Arc::new(settings), mqtt.clone(), shutdown.clone());
    let mut http_task = None;
    if let Some(mut state) = http {
        state.ha = uses_home_assistant.then(|| ctx.home_assistant().clone());
        state.influx = ctx.influx().cloned();
        http_task = Some(tokio::spawn(crate::http::serve(
            state,
            http_port,
            shutdown.clone(),
        )));
    }

    let outcome = match S::new(&ctx) {
        Ok(service) => {
            let service = Arc::new(service);
            if let Some(slot) = &health_slot {
                let health_of = service.clone();
                let _ = slot.set(Box::new(move || health_of.health()));
            }
            let heartbeat = (heartbeat_every > 0).then(|| {
                let health_of = service.clone();
                tokio::spawn(heartbeat::run(
                    mqtt.clone(),
                    Duration::from_secs(heartbeat_every),
                    shutdown.clone(),
                    move || {
                        heartbeat::online_payload(
                            S::NAME,
                            S::VERSION,
                            started,
                            Duration::from_secs(heartbeat_every),
                            &health_of.health().with("integrations", &integrations),
                        )
                    },
                ))
            });
            let outcome = run_until_shutdown(service.run(ctx), &shutdown).await;
            shutdown.cancel();
            if let Some(heartbeat) = heartbeat {
                let _ = heartbeat.await;
            }
            outcome
        }
        Err(error) => Err(error.context("service start-up failed")),
    };
    shutdown.cancel();
    // A command being handled is finished (and acknowledged); queued ones come again.
    mqtt.finish_handlers(Duration::from_secs(3)).await;
    if let Some(http) = http_task {
        // Its graceful shutdown waits for requests in flight; a stuck one is not waited for.
        let _ = tokio::time::timeout(Duration::from_secs(2), http).await;
    }

    let reason = if outcome.is_ok() {
        crate::messages::heartbeat::SHUTDOWN
    } else {
        crate::messages::heartbeat::ERROR
    };
    let offline = heartbeat::offline_payload(S::NAME, S::VERSION, started, reason);
    let published = tokio::time::timeout(
        Duration::from_secs(1),
        mqtt.publish_json(&mqtt.topic("heartbeat"), &offline, QoS::AtLeastOnce, true),
    )
    .await;
    if !matches!(published, Ok(Ok(()))) {
        tracing::warn!("offline_publish_failed");
    }
    mqtt.disconnect(Duration::from_secs(2)).await;
    match outcome {
        Ok(()) => {
            tracing::info!(
                uptime_seconds = started.elapsed().as_secs(),
                "service_stopped"
            );
            ExitCode::SUCCESS
        }
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "service_failed");
            // The same in one plain line, for a person reading a terminal or `docker logs`.
            eprintln!("{}: {error:#}", S::NAME);
            ExitCode::FAILURE
        }
    }
}

/// What this configuration of `S` talks to besides MQTT, as the heartbeat names it.
pub fn integrations<S: Service>(settings: &Settings<S::Settings>) -> Vec<&'static str> {
    let mut used = Vec::new();
    if S::uses_home_assistant(settings) {
        used.push("home_assistant");
    }
    if S::uses_influx(settings) {
        used.push("influx");
    }
    used
}

/// Runs `work` as its own task (so a panic becomes an error, not an abort) until it
/// ends, or until `shutdown` plus the grace period.
async fn run_until_shutdown(
    work: impl std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
    shutdown: &CancellationToken,
) -> anyhow::Result<()> {
    let mut task = tokio::spawn(work);
    let joined = tokio::select! {
        joined = &mut task => joined,
        () = shutdown.cancelled() => {
            match tokio::time::timeout(SHUTDOWN_GRACE, &mut task).await {
                Ok(joined) => joined,
                Err(_) => {
                    tracing::warn!(grace_seconds = SHUTDOWN_GRACE.as_secs(), "shutdown_grace_exceeded");
                    task.abort();
                    return Ok(());
                }
            }
        }
    };
    match joined {
        Ok(result) => result,
        Err(error) if error.is_panic() => Err(anyhow::anyhow!("the service panicked")),
        Err(error) => Err(anyhow::anyhow!("the service task ended: {error}")),
    }
}
