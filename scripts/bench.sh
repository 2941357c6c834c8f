#!/usr/bin/env bash
# Prints the foundation's figures: homelab vs raw rumqttc subscribe throughput,
# example-service idle RSS and time to first heartbeat (needs mosquitto).
set -euo pipefail

if [[ "${1:-}" == "--help" || "${1:-}" == "-h" ]]; then
  echo "usage: scripts/bench.sh   (BENCH_MESSAGES=N to change the messages per round)"
  exit 0
fi
cd "$(dirname "$0")/.."
cargo build --release -p example-service
cargo bench -p homelab --features testkit --bench mqtt_throughput
