#!/usr/bin/env bash
# Runs the home lab on this machine without Docker: a private mosquitto on a free
# loopback port and the services built from source, logs prefixed by service name.
# Ctrl-C stops everything cleanly (each service publishes `offline` first).
set -euo pipefail

usage() {
  cat <<'USAGE'
usage: scripts/run-local.sh [--duration SECONDS] [--port PORT]

  --duration SECONDS  stop by itself after SECONDS (for scripts and tests)
  --port PORT         MQTT port for the local broker (default: 1883, or a free one)

State and logs go to .local/ in the repository (git-ignored).
USAGE
}

duration=""
port=""
while (($#)); do
  case "$1" in
    --duration) duration="${2:?--duration needs a number of seconds}"; shift 2 ;;
    --port) port="${2:?--port needs a port number}"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "run-local.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
done
cd "$(dirname "$0")/.."
root="$(pwd)"

mosquitto_bin="$(command -v mosquitto || true)"
[[ -n "$mosquitto_bin" || ! -x /usr/sbin/mosquitto ]] || mosquitto_bin=/usr/sbin/mosquitto
if [[ -z "$mosquitto_bin" ]]; then
  echo "mosquitto is not installed: installing it with apt"
  sudo=()
  [[ "$(id -u)" -eq 0 ]] || sudo=(sudo)
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends mosquitto
  mosquitto_bin=/usr/sbin/mosquitto
fi

port_taken() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
if [[ -n "$port" ]]; then
  if port_taken "$port"; then
    echo "run-local.sh: port $port is already in use (another run-local.sh?); pick another with --port" >&2
    exit 1
  fi
else
  port=1883
  while port_taken "$port"; do port=$((port + 1)); done
fi

echo "building the workspace…"
cargo build --quiet --workspace --bins

run_dir="$root/.local"
mkdir -p "$run_dir/logs" "$run_dir/mosquitto"
cat >"$run_dir/mosquitto/mosquitto.conf" <<CONF
listener $port 127.0.0.1
allow_anonymous true
persistence true
persistence_location $run_dir/mosquitto/
log_dest file $run_dir/logs/mosquitto.log
CONF
[[ "$(id -u)" -ne 0 ]] || echo "user root" >>"$run_dir/mosquitto/mosquitto.conf"

pids=()
stop_all() {
  trap - INT TERM EXIT
  echo "stopping…"
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  [[ -z "${broker_pid:-}" ]] || { kill -TERM "$broker_pid" 2>/dev/null || true; wait "$broker_pid" 2>/dev/null || true; }
  echo "stopped"
}
trap stop_all INT TERM EXIT

"$mosquitto_bin" -c "$run_dir/mosquitto/mosquitto.conf" 2>>"$run_dir/logs/mosquitto.log" &
broker_pid=$!
for _ in $(seq 50); do port_taken "$port" && break; sleep 0.1; done

services=(example-service)
for service in "${services[@]}"; do
  mkdir -p "$run_dir/data/$service"
  (
    export MQTT_HOST=127.0.0.1 MQTT_PORT="$port" DATA_DIR="$run_dir/data/$service"
    export LOG_FORMAT=pretty HEARTBEAT_INTERVAL_SECONDS="${HEARTBEAT_INTERVAL_SECONDS:-10}"
    exec "${CARGO_TARGET_DIR:-$root/target}/debug/$service" run
  ) > >(tee -a "$run_dir/logs/$service.log") 2>&1 &
  pids+=($!) # the service itself, not tee: SIGTERM must reach it
done

cat <<INFO
homelab is running locally
  broker:   mqtt://127.0.0.1:$port  (watch: mosquitto_sub -h 127.0.0.1 -p $port -t 'homelab/#' -v)
  services: ${services[*]}
  logs:     $run_dir/logs/   state: $run_dir/data/
  try:      mosquitto_pub -h 127.0.0.1 -p $port -t homelab/orchestrator/command/example-service -m '{"command":"ping","request_id":"1"}'
Ctrl-C stops everything.
INFO

if [[ -n "$duration" ]]; then
  sleep "$duration"
  exit 0
fi
wait "${pids[@]}"
