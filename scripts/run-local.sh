#!/usr/bin/env bash
# Runs the whole home lab on this machine without Docker and without Home Assistant:
# a private mosquitto (or an embedded broker without it), sim-home (a SIMULATED house speaking the HA API) and every
# service, built from source, with a generated environment. Logs carry the service
# name on each line. Ctrl-C stops the services first (each publishes offline and logs
# its shutdown), then sim-home and the broker. One run per state folder.
set -euo pipefail

usage() {
  cat <<'USAGE'
usage: scripts/run-local.sh [--duration SECONDS] [--port PORT] [--sim-port PORT]
                            [--web-port PORT] [--speed N] [--state-dir DIR] [--no-build]

  --duration SECONDS  stop by itself after SECONDS (for scripts and tests)
  --port PORT         MQTT port of the local broker (default: 1883, or the next free one)
  --sim-port PORT     port of sim-home's HA API (default: 8123, or the next free one)
  --web-port PORT     the dashboard's port (default: 8085, or the next free one)
  --speed N           simulated seconds per real second (default 60: a day in 24 min)
  --state-dir DIR     state, logs and the generated .env (default: .local/)
  --season DATE       simulate the sun of DATE (YYYY-MM-DD, default: this year's
                      21 June, so that the demo has sun to charge with; 'today' for today's)
  --no-build          use the binaries already in target/debug

To use a real Home Assistant instead, run the services with HA_URL and HA_TOKEN
set in .env (see README.md); sim-home is only for trying things out.
USAGE
}

duration=""
port=""
sim_port=""
web_port=""
speed=60
state_dir=""
season_date="$(date +%Y)-06-21"
build=1
while (($#)); do
  case "$1" in
    --duration) duration="${2:?--duration needs a number of seconds}"; shift 2 ;;
    --port) port="${2:?--port needs a port number}"; shift 2 ;;
    --sim-port) sim_port="${2:?--sim-port needs a port number}"; shift 2 ;;
    --web-port) web_port="${2:?--web-port needs a port number}"; shift 2 ;;
    --speed) speed="${2:?--speed needs a number}"; shift 2 ;;
    --state-dir) state_dir="${2:?--state-dir needs a directory}"; shift 2 ;;
    --season) season_date="${2:?--season needs a date or 'today'}"; shift 2 ;;
    --no-build) build=0; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "run-local.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
done
[[ "$season_date" != today ]] || season_date=""
cd "$(dirname "$0")/.."
root="$(pwd)"
run_dir="${state_dir:-$root/.local}"

# One run per state folder: two would share the env, logs and state.
mkdir -p "$run_dir"
exec 9>"$run_dir/run.lock"
if ! flock --nonblock 9; then
  echo "run-local.sh: another run is using $run_dir (pid $(cat "$run_dir/run.pid" 2>/dev/null || echo '?')); stop it, or give this one its own --state-dir DIR" >&2
  exit 1
fi
echo $$ >"$run_dir/run.pid"

# mosquitto when installed; otherwise (or with RUN_LOCAL_BROKER=embedded) the
# workspace's embedded broker, tools/local-broker (rumqttd).
mosquitto_bin="$(command -v mosquitto || true)"
[[ -n "$mosquitto_bin" || ! -x /usr/sbin/mosquitto ]] || mosquitto_bin=/usr/sbin/mosquitto
[[ "${RUN_LOCAL_BROKER:-}" != embedded ]] || mosquitto_bin=""

port_taken() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# A port given by hand must be free; a default one moves to the next free port.
pick_port() { # name, given, default
  local name="$1" given="$2" candidate="$3"
  if [[ -n "$given" ]]; then
    if port_taken "$given"; then
      echo "run-local.sh: $name port $given is already in use (another run-local.sh?); pick another one" >&2
      exit 1
    fi
    echo "$given"
    return
  fi
  while port_taken "$candidate"; do candidate=$((candidate + 1)); done
  echo "$candidate"
}
port="$(pick_port MQTT "$port" 1883)"
sim_port="$(pick_port sim-home "$sim_port" 8123)"
[[ "$sim_port" != "$port" ]] || sim_port=$((sim_port + 1))
web_port="$(pick_port dashboard "$web_port" 8085)"

bin_dir="${CARGO_TARGET_DIR:-$root/target}/debug"
if ((build)); then
  echo "building the workspace (cargo build; the first time takes minutes)…"
  cargo build --workspace --bins
fi

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
# stop_all [SECONDS]: the services first, then sim-home (their HA), then the broker they
# say offline on. SECONDS: how long the services may take to stop by themselves first
# (after a Ctrl-C they have it too, and a second signal would force them out at once).
stop_all() {
  trap - INT TERM EXIT
  echo "stopping…"
  local services_pids=("${pids[@]:1}") pid deadline=$((SECONDS + ${1:-0}))
  for pid in "${services_pids[@]}"; do
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${services_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if ((${#pids[@]})); then
    kill -TERM "${pids[0]}" 2>/dev/null || true
    wait "${pids[0]}" 2>/dev/null || true
  fi
  [[ -z "${broker_pid:-}" ]] || { kill -TERM "$broker_pid" 2>/dev/null || true; wait "$broker_pid" 2>/dev/null || true; }
  echo "stopped"
}
trap stop_all EXIT
# A clean stop on Ctrl-C or SIGTERM is a success. After Ctrl-C the services get the
# runtime's whole 10 s shutdown grace before a second signal forces them out.
trap 'stop_all 10; exit 0' INT
trap 'stop_all; exit 0' TERM

services=(sim-home example-service pv-forecast smart-ev-charging ev-forecast health-monitor dashboard)
# The assistant needs a Telegram bot and a language model, from this shell's environment
# (exported; every service inherits it). Without them it is left out, and said why.
assistant_skipped=""
if [[ -z "${TELEGRAM_BOT_TOKEN:-}" || -z "${TELEGRAM_ALLOWED_CHAT_IDS:-}" ]]; then
  assistant_skipped="export TELEGRAM_BOT_TOKEN and TELEGRAM_ALLOWED_CHAT_IDS to start it"
else
  case "${LLM_PROVIDER:-gemini}" in
    gemini) [[ -n "${GEMINI_API_KEY:-}${GEMINI_BASE_URL:-}" ]] || assistant_skipped="LLM_PROVIDER=gemini needs GEMINI_API_KEY" ;;
    openai) [[ -n "${OPENAI_API_KEY:-}${OPENAI_BASE_URL:-}" ]] || assistant_skipped="LLM_PROVIDER=openai needs OPENAI_API_KEY or OPENAI_BASE_URL" ;;
    anthropic) [[ -n "${ANTHROPIC_API_KEY:-}${ANTHROPIC_BASE_URL:-}" ]] || assistant_skipped="LLM_PROVIDER=anthropic needs ANTHROPIC_API_KEY" ;;
    ollama) ;;
    *) assistant_skipped="LLM_PROVIDER=${LLM_PROVIDER} is not gemini, openai, anthropic or ollama" ;;
  esac
fi
if [[ -z "$assistant_skipped" ]]; then
  services+=(orchestrator)
  assistant_line="orchestrator on Telegram, LLM_PROVIDER=${LLM_PROVIDER:-gemini}; log in logs/orchestrator.log"
else
  assistant_line="not started: $assistant_skipped (and the provider's key, see .env.example)"
fi
needed=("${services[@]}")
[[ -n "$mosquitto_bin" ]] || needed+=(local-broker)
for binary in "${needed[@]}"; do
  [[ -x "$bin_dir/$binary" ]] || { echo "run-local.sh: $bin_dir/$binary is missing (run without --no-build)" >&2; exit 1; }
done

# The broker and sim-home run in sessions of their own: a Ctrl-C in the terminal reaches
# only the services, and stop_all ends sim-home and then the broker after them, so each
# service still reaches the broker to say offline. `9>&-`: the run lock stays ours.
if [[ -n "$mosquitto_bin" ]]; then
  setsid "$mosquitto_bin" -c "$run_dir/mosquitto/mosquitto.conf" 2>>"$run_dir/logs/mosquitto.log" 9>&- &
else
  echo "mosquitto is not installed: using the embedded broker (tools/local-broker)"
  setsid "$bin_dir/local-broker" --port "$port" >>"$run_dir/logs/mosquitto.log" 2>&1 9>&- &
fi
broker_pid=$!
for _ in $(seq 50); do port_taken "$port" && break; sleep 0.1; done

# One environment for all, as a .env would hold it; sim-home accepts exactly this token.
token="$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
web_password="$(head -c 9 /dev/urandom | od -An -tx1 | tr -d ' \n')"
now_plus() { date -u -d "+$1 hours" +%Y%m%dT%H%M00Z; }
cat >"$run_dir/trips.ics" <<ICS
BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//homelab//run-local demo trips//EN
BEGIN:VEVENT
UID:demo-fair@homelab
DTSTART:$(now_plus 5)
SUMMARY:Trade fair
LOCATION:Messe Essen
END:VEVENT
BEGIN:VEVENT
UID:demo-grandma@homelab
DTSTART:$(now_plus 26)
SUMMARY:Visit Grandma
LOCATION:Grandma
END:VEVENT
END:VCALENDAR
ICS
{
  cat services/sim-home/demo.env.example
  cat <<ENV
MQTT_HOST=127.0.0.1
MQTT_PORT=$port
HA_URL=http://127.0.0.1:$sim_port
HA_TOKEN=$token
LOG_FORMAT=pretty
HEARTBEAT_INTERVAL_SECONDS=${HEARTBEAT_INTERVAL_SECONDS:-10}
SIM_PORT=$sim_port
SIM_SPEED=$speed
SIM_SEASON_DATE=$season_date
PV_FORECAST_OPEN_METEO_URL=http://127.0.0.1:$sim_port
# sim-home's sky is the season's: place pv-forecast's sun on the same date.
PV_FORECAST_SUN_DATE=$season_date
EV_FORECAST_ICAL_URLS=$run_dir/trips.ics
HEALTH_MONITOR_CONTAINER_INTERVAL_SECONDS=0
HEALTH_MONITOR_DIAGNOSE_INTERVAL_SECONDS=0
HEALTH_MONITOR_ENTITIES=input_boolean.homelab_safe_mode
DASHBOARD_BIND=127.0.0.1
DASHBOARD_PORT=$web_port
DASHBOARD_USERNAME=admin
DASHBOARD_PASSWORD=$web_password
ENV
} >"$run_dir/env"

for service in "${services[@]}"; do
  mkdir -p "$run_dir/data/$service"
  (
    set -a
    # shellcheck disable=SC1091 # generated just above
    . "$run_dir/env"
    set +a
    export DATA_DIR="$run_dir/data/$service"
    cd "$run_dir/data/$service" # no stray .env from the repository is read
    launcher=()
    [[ "$service" != sim-home ]] || launcher=(setsid)
    exec "${launcher[@]}" "$bin_dir/$service" run 9>&-
  ) > >(
    # tee ignores Ctrl-C, so a service's shutdown lines still reach the terminal and the log.
    trap '' INT
    exec tee -a "$run_dir/logs/$service.log" 9>&-
  ) 2>&1 &
  pids+=($!) # the service itself, not tee: SIGTERM must reach it
  [[ "$service" != sim-home ]] || for _ in $(seq 50); do port_taken "$sim_port" && break; sleep 0.1; done
done

cat <<INFO
homelab is running locally, on a SIMULATED house (sim-home, ${speed}x real time, the sun of ${season_date:-today})
  dashboard: http://127.0.0.1:$web_port  (user admin, password $web_password)
  broker:   mqtt://127.0.0.1:$port
  watch:    mosquitto_sub -h 127.0.0.1 -p $port -t 'homelab/#' -v
  within a minute: every service's homelab/<service>/heartbeat says online,
            homelab/sim-home/status shows PV, load, battery, grid and the car,
            homelab/pv-forecast/updated has today's and tomorrow's kWh,
            homelab/ev-forecast/plan asks for energy for the demo trips,
            homelab/smart-ev-charging/status charges the car from the surplus
  fake HA:  http://127.0.0.1:$sim_port/api/states (Authorization: Bearer $token)
  charging mode: mosquitto_pub -h 127.0.0.1 -p $port -t homelab/smart-ev-charging/entity/mode/set -m smart
  services: ${services[*]}
  assistant: $assistant_line
  alerts:   health-monitor's, in $run_dir/logs/health-monitor.log (no TELEGRAM_BOT_TOKEN here);
            its container and diagnose layers are off: the services run as processes
  logs:     $run_dir/logs/   state: $run_dir/data/   environment: $run_dir/env
Ctrl-C stops everything.
INFO

if [[ -n "$duration" ]]; then
  sleep "$duration"
  exit 0
fi
wait "${pids[@]}"
