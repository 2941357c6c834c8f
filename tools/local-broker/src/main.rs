//! `local-broker --port N`: an MQTT 3.1.1 broker on 127.0.0.1, embedded (rumqttd), for
//! scripts/run-local.sh on machines without mosquitto. Not for production: no
//! authentication, no persistence across restarts; Compose uses mosquitto.

use clap::Parser;

#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Loopback port to listen on.
    #[arg(long, default_value_t = 1883)]
    port: u16,
}

/// rumqttd's own configuration format (see its rumqttd.toml), loopback only.
fn configuration(port: u16) -> String {
    format!(
        r#"
id = 0
[router]
id = 0
max_connections = 1000
max_outgoing_packet_count = 1000
max_segment_size = 10485760
max_segment_count = 10

[v4.1]
name = "v4-1"
listen = "127.0.0.1:{port}"
next_connection_delay_ms = 1
    [v4.1.connections]
    connection_timeout_ms = 60000
    max_payload_size = 1048576
    max_inflight_count = 500
    dynamic_filters = true
"#
    )
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let config: rumqttd::Config = config::Config::builder()
        .add_source(config::File::from_str(
            &configuration(args.port),
            config::FileFormat::Toml,
        ))
        .build()?
        .try_deserialize()?;
    if std::net::TcpListener::bind(("127.0.0.1", args.port)).is_err() {
        anyhow::bail!("port {} is already in use", args.port);
    }
    println!(
        "local-broker: MQTT on 127.0.0.1:{} (embedded rumqttd; for local runs only)",
        args.port
    );
    rumqttd::Broker::new(config).start()?;
    Ok(())
}
