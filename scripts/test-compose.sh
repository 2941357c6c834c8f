#!/usr/bin/env bash
# The Compose stack end to end, as a user runs it (CI runs this after scripts/test.sh):
# builds the offline stand-ins (scripts/offline-images.sh), the base and every image
# from the repository's Dockerfiles; brings the stack up with the demo profile
# (sim-home as Home Assistant) and an authenticated broker in a copy of the repository
# with its own .env; checks health, heartbeats, diagnose, hardening, a broker restart,
# stop, down/up, backup/restore, a killed deploy resumed, two sites across a cut link;
# prints the figures. Its own project name; all it created (containers, networks,
# volumes) is removed at the end, also on failure. Images stay, as the build cache.
set -euo pipefail

if [[ "${1:-}" == "--help" || "${1:-}" == "-h" ]]; then
  sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'
  echo "usage: scripts/test-compose.sh   (needs a Docker engine and Compose: docker compose or docker-compose)"
  exit 0
fi
cd "$(dirname "$0")/.."

fail() { echo "test-compose.sh: FAIL: $*" >&2; exit 1; }
command -v docker >/dev/null 2>&1 || fail "no docker command: install Docker to run the container test"
docker info >/dev/null 2>&1 || fail "no Docker engine reachable (docker info failed): the container test cannot run"
if docker compose version >/dev/null 2>&1; then
  compose_tool=(docker compose)
elif command -v docker-compose >/dev/null 2>&1; then
  compose_tool=(docker-compose)
else
  fail "neither 'docker compose' nor 'docker-compose' is installed"
fi

# The backup phase encrypts with age (Debian's package).
# shellcheck source=scripts/lib/apt.sh
source scripts/lib/apt.sh
command -v age >/dev/null 2>&1 || apt_install age

t0=$SECONDS
phase_started=$SECONDS
phase() {
  echo "== $1 (at $((SECONDS - t0)) s)"
  phase_started=$SECONDS
}
figures=()
checks=0
figure() { figures+=("$1"); echo "   $1"; }
# pass FIGURE: a check that held, with what it measured
pass() { checks=$((checks + 1)); figure "$1"; }

# All but the orchestrator (profile assistant), which needs a Telegram bot and a
# language model that cannot be reached from here: its image is built and its
# start-up checked on its own below.
services=()
for folder in services/*/; do
  folder="${folder%/}"
  [[ "${folder#services/}" == orchestrator ]] || services+=("${folder#services/}")
done
project="homelabtest$$"
work="$(mktemp -d)"
stack="$work/repo"
cleanup() {
  local status=$?
  if [[ $status -ne 0 && -d "$stack" ]]; then
    echo "-- logs of the failed run (last 30 lines each)"
    (cd "$stack" && "${compose_tool[@]}" -p "$project" logs --no-color --tail 30 2>&1) || true
  fi
  for name in "$project" "${project}bad"; do
    (cd "$stack" 2>/dev/null && "${compose_tool[@]}" -p "$name" --profile demo --profile example \
      down --volumes --remove-orphans --timeout 10 >/dev/null 2>&1) || true
  done
  docker rm -fv "${project}-main-broker" "${project}-edge-broker" "${project}-main-listener" \
    "${project}-edge-example" >/dev/null 2>&1 || true
  docker network rm "${project}_site_main" "${project}_site_edge" >/dev/null 2>&1 || true
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

volumes_before="$(docker volume ls -q | sort)"

# A copy of the working tree (what git tracks or would track), so this run's .env
# never touches the user's.
mkdir -p "$stack"
git ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' file; do
  [[ -e "$file" ]] && printf '%s\0' "$file"
done | tar --null -T - -c | tar -C "$stack" -x

compose() { (cd "$stack" && "${compose_tool[@]}" -p "$project" --profile demo --profile example "$@"); }
# set_env FILE KEY=VALUE… → each KEY replaced in place, or appended
set_env() {
  local file="$1" pair key
  shift
  for pair in "$@"; do
    key="${pair%%=*}"
    grep -v "^$key=" "$file" >"$file.tmp" || true
    echo "$pair" >>"$file.tmp"
    mv "$file.tmp" "$file"
  done
}
container() { compose ps -q "$1"; }
inspect() { docker inspect -f "$2" "$(container "$1")"; }

mqtt_user="ci-homelab"
mqtt_password="ci-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
ha_token="$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
# sub ARGS… → mosquitto_sub inside the broker container, with the .env credentials
sub() {
  compose exec -T mqtt mosquitto_sub -h 127.0.0.1 -u "$mqtt_user" -P "$mqtt_password" "$@"
}
# heartbeats WAIT_S [-R] → "service status uptime cycles reason" per heartbeat seen (retained ones too unless -R)
heartbeats() {
  local wait="$1"
  shift
  sub -t 'homelab/+/heartbeat' -W "$wait" "$@" 2>/dev/null \
    | python3 -c '
import json, sys
for line in sys.stdin:
    try:
        beat = json.loads(line)
    except ValueError:
        continue
    print(beat.get("service"), beat.get("status"), beat.get("uptime_seconds"), beat.get("cycles", "-"),
          beat.get("reason", "-"), flush=True)
' || true
}
# expect_retained WHAT STATUS [REASON]: every service's retained heartbeat says STATUS (and REASON)
expect_retained() {
  local what="$1" want="$2${3:+ $3}" service status reason
  local -A seen=()
  while read -r service status _ _ reason; do seen[$service]="$status${3:+ $reason}"; done < <(heartbeats 3)
  for service in "${services[@]}"; do
    [[ "${seen[$service]:-}" == "$want" ]] || fail "$what: $service's retained heartbeat says '${seen[$service]:-nothing}', not '$want'"
  done
}

phase "stand-in base images (scripts/offline-images.sh)"
scripts/offline-images.sh
figure "stand-ins: $((SECONDS - phase_started)) s"

phase "build base (scripts/build-base.sh)"
had_base=0
docker image inspect homelab-base:latest >/dev/null 2>&1 && had_base=1
scripts/build-base.sh >"$work/base.log" 2>&1 || { tail -40 "$work/base.log"; fail "the base image did not build"; }
figure "homelab-base build: $((SECONDS - phase_started)) s ($([[ $had_base -eq 1 ]] && echo "base existed: cache" || echo cold))"

phase "build every service image from the Dockerfile"
cp .env.example "$stack/.env"
cat services/sim-home/demo.env.example >>"$stack/.env"
set_env "$stack/.env" "COMPOSE_PROJECT_NAME=$project" "MQTT_USERNAME=$mqtt_user" "MQTT_PASSWORD=$mqtt_password" \
  "HA_URL=http://sim-home:8123" "HA_TOKEN=$ha_token" "PV_FORECAST_OPEN_METEO_URL=http://sim-home:8123" \
  "HEARTBEAT_INTERVAL_SECONDS=10" "SIM_SPEED=60" \
  "DOCKER_GID=$(stat -c %g /var/run/docker.sock)" "HEALTH_MONITOR_CONTAINER_INTERVAL_SECONDS=5" \
  "HEALTH_MONITOR_DIAGNOSE_INTERVAL_SECONDS=30" "LOG_MAX_FILES=2" \
  "DASHBOARD_PASSWORD=ci-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')" \
  "DASHBOARD_PORT=$((20000 + RANDOM % 20000))"
scripts/mqtt-users.sh "$stack/.env" >/dev/null # every service its own random broker password
compose build >"$work/build.log" 2>&1 || { tail -60 "$work/build.log"; fail "compose build failed"; }
figure "service images, first build: $((SECONDS - phase_started)) s"
phase_started=$SECONDS
compose build >"$work/build.log" 2>&1 || { tail -60 "$work/build.log"; fail "the second compose build failed"; }
figure "service images, warm rebuild: $((SECONDS - phase_started)) s"
phase_started=$SECONDS
compose --profile assistant build orchestrator >"$work/build.log" 2>&1 \
  || { tail -60 "$work/build.log"; fail "the orchestrator's image did not build"; }
figure "orchestrator image: $((SECONDS - phase_started)) s"
for service in "${services[@]}" orchestrator; do
  size="$(docker image inspect -f '{{ .Size }}' "homelab/$service:latest")"
  mb="$(awk -v s="$size" 'BEGIN { printf "%.1f", s / 1e6 }')"
  figure "image homelab/$service: $mb MB (goal <= 35 MB)$(awk -v s="$size" 'BEGIN { if (s > 35e6) print "  OVER THE GOAL" }')"
done

phase "bad input: the assistant with a bot token but no allowed chat refuses to start"
assistant_log="$(docker run --rm --network none -e TELEGRAM_BOT_TOKEN=123:not-a-real-token \
  homelab/orchestrator:latest run 2>&1)" && fail "the orchestrator started without TELEGRAM_ALLOWED_CHAT_IDS"
grep -q "TELEGRAM_ALLOWED_CHAT_IDS is empty" <<<"$assistant_log" \
  || fail "the orchestrator did not name TELEGRAM_ALLOWED_CHAT_IDS: $assistant_log"
grep -q "not-a-real-token" <<<"$assistant_log" && fail "the orchestrator logged its bot token"
pass "orchestrator container: a bot without allowed chats is refused at start, naming TELEGRAM_ALLOWED_CHAT_IDS"

phase "bad input: no MQTT credentials → the broker refuses to start"
bad="$work/bad"
mkdir -p "$bad"
(cd "$stack" && tar -c docker-compose.yml infrastructure) | tar -C "$bad" -x
grep -v -E '^MQTT_(USERNAME|PASSWORD)=' "$stack/.env" >"$bad/.env"
(cd "$bad" && "${compose_tool[@]}" -p "${project}bad" up -d mqtt >/dev/null 2>&1) || true
sleep 3
bad_log="$(cd "$bad" && "${compose_tool[@]}" -p "${project}bad" logs --no-color mqtt 2>&1)"
grep -q "MQTT_USERNAME and MQTT_PASSWORD must be set in .env" <<<"$bad_log" \
  || fail "without credentials the broker did not say so: $bad_log"
bad_state="$(docker inspect -f '{{ .State.Health.Status }}' "$(cd "$bad" && "${compose_tool[@]}" -p "${project}bad" ps -q mqtt)" 2>/dev/null || echo none)"
[[ "$bad_state" != healthy ]] || fail "a broker without credentials became healthy"
pass "no credentials: the broker stops with: $(grep -m1 -o 'mqtt: MQTT_USERNAME.*' <<<"$bad_log")"
(cd "$bad" && "${compose_tool[@]}" -p "${project}bad" down --volumes --timeout 5 >/dev/null 2>&1) || true
rm "$bad/.env"
missing="$(cd "$bad" && { "${compose_tool[@]}" -p "${project}bad" config 2>&1 >/dev/null || true; })"
grep -q "\.env" <<<"$missing" || fail "a missing .env was not named: $missing"
pass "no .env: compose refuses: $(head -n1 <<<"$missing")"

phase "up (demo profile: sim-home as Home Assistant; example profile)"
up_at=$SECONDS
compose up -d >"$work/up.log" 2>&1 || { cat "$work/up.log"; fail "compose up failed"; }
declare -A healthy_after=()
deadline=$((SECONDS + 300))
while :; do
  waiting=()
  for service in mqtt "${services[@]}"; do
    [[ -n "${healthy_after[$service]:-}" ]] && continue
    id="$(container "$service")"
    status="$(docker inspect -f '{{ if .State.Health }}{{ .State.Health.Status }}{{ else }}none{{ end }}' "$id" 2>/dev/null || echo missing)"
    if [[ "$status" == healthy ]]; then healthy_after[$service]=$((SECONDS - up_at)); else waiting+=("$service:$status"); fi
  done
  ((${#waiting[@]} == 0)) && break
  ((SECONDS < deadline)) || fail "not healthy 300 s after up: ${waiting[*]}"
  sleep 2
done
for service in mqtt "${services[@]}"; do pass "$service healthy $((healthy_after[$service])) s after up"; done

phase "heartbeats on the authenticated broker"
expect_retained "after up" online
pass "heartbeat online: ${services[*]}"
if compose exec -T mqtt mosquitto_sub -h 127.0.0.1 -t 'homelab/#' -C 1 -W 3 >"$work/anon.log" 2>&1; then
  fail "an anonymous client was let in"
fi
pass "anonymous client refused: $(tr -d '\r' <"$work/anon.log" | head -n1)"
if compose exec -T mqtt mosquitto_sub -h 127.0.0.1 -u "$mqtt_user" -P wrong -t 'homelab/#' -C 1 -W 3 >/dev/null 2>&1; then
  fail "a wrong password was let in"
fi
pass "wrong password refused"
# One identity per service: pv-forecast's may not fake another service's heartbeat.
pv_password="$(sed -n 's/^MQTT_PASSWORD_PV_FORECAST=//p' "$stack/.env")"
compose exec -T mqtt mosquitto_pub -h 127.0.0.1 -u pv-forecast -P "$pv_password" -q 1 -r \
  -t homelab/smart-ev-charging/heartbeat -m '{"service":"smart-ev-charging","status":"offline","reason":"faked"}' \
  >/dev/null 2>&1 || true
if heartbeats 3 | grep -q "^smart-ev-charging offline"; then
  fail "pv-forecast's identity faked smart-ev-charging's heartbeat"
fi
grep -q "password file written for user $mqtt_user and .*smart-ev-charging" <(compose logs --no-color mqtt 2>&1) \
  || fail "the broker did not create the services' own identities"
pass "a service cannot publish as another: pv-forecast's fake offline heartbeat for smart-ev-charging dropped by the ACL"

# No env_file: each container holds its own broker password and no other identity's.
for service in "${services[@]}"; do
  own="MQTT_PASSWORD_$(echo "$service" | tr '[:lower:]-' '[:upper:]_')"
  docker inspect -f '{{ range .Config.Env }}{{ println . }}{{ end }}' "$(container "$service")" >"$work/env"
  leaked="$(grep -o '^MQTT_PASSWORD_[A-Z_]*' "$work/env" || true)"
  [[ -z "$leaked" ]] || fail "$service holds other identities' passwords: $leaked"
  while IFS='=' read -r key value; do
    [[ "$key" == MQTT_PASSWORD_* && "$key" != "$own" && -n "$value" ]] || continue
    ! grep -qF "=$value" "$work/env" || fail "$service holds $key's value"
  done <"$stack/.env"
done
grep -q '^HA_TOKEN=' <(docker inspect -f '{{ range .Config.Env }}{{ println . }}{{ end }}' "$(container mqtt)") \
  && fail "the broker holds HA_TOKEN"
pass "each container holds only its own secrets: no other identity's broker password in ${services[*]}, no HA token in mqtt"

phase "diagnose --json inside every container"
for service in "${services[@]}"; do
  compose exec -T "$service" "/app/$service" diagnose --json >"$work/diagnose.json" 2>"$work/diagnose.err" \
    || { cat "$work/diagnose.json" "$work/diagnose.err"; fail "$service diagnose failed"; }
  summary="$(python3 -c '
import collections, json, sys
report = json.load(open(sys.argv[1]))
steps = report["steps"] if isinstance(report, dict) else report
count = collections.Counter(step["status"] for step in steps)
totals = " ".join(f"{status}={n}" for status, n in sorted(count.items()))
print(totals, "|", " ".join(step["name"] + ":" + step["status"] for step in steps))
' "$work/diagnose.json")" || { cat "$work/diagnose.json"; fail "$service diagnose --json is not the expected JSON"; }
  pass "$service diagnose: $summary"
done

phase "hardening: uid, read-only root, no new privileges, memory, log rotation"
for service in mqtt "${services[@]}"; do
  id="$(container "$service")"
  [[ "$(docker inspect -f '{{ .HostConfig.ReadonlyRootfs }}' "$id")" == true ]] \
    || fail "$service root file system is writable"
  docker inspect -f '{{ .HostConfig.SecurityOpt }}' "$id" | grep -q "no-new-privileges:true" \
    || fail "$service lacks no-new-privileges"
  rotation="$(docker inspect -f '{{ .HostConfig.LogConfig.Type }} {{ index .HostConfig.LogConfig.Config "max-size" }} {{ index .HostConfig.LogConfig.Config "max-file" }}' "$id")"
  [[ "$rotation" == "json-file 10m 2" ]] || fail "$service's log is not rotated as .env says (LOG_MAX_FILES=2): $rotation"
  [[ "$(docker inspect -f '{{ .State.OOMKilled }} {{ .RestartCount }}' "$id")" == "false 0" ]] \
    || fail "$service was OOM-killed or restarted: $(docker inspect -f '{{ .State.OOMKilled }} {{ .RestartCount }}' "$id")"
  limit="$(docker inspect -f '{{ .HostConfig.Memory }}' "$id")"
  usage="$(docker stats --no-stream --format '{{ .MemUsage }}' "$id" | cut -d/ -f1 | tr -d ' ')"
  usage_bytes="$(python3 -c '
import re, sys
number, unit = re.fullmatch(r"([0-9.]+)([A-Za-z]*)", sys.argv[1]).groups()
print(int(float(number) * {"B": 1, "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3, "kB": 1e3, "MB": 1e6, "GB": 1e9}[unit]))
' "$usage")"
  ((limit > 0 && usage_bytes < limit)) || fail "$service uses $usage of a $limit-byte limit"
  # mosquitto starts as root to write its password file, then drops to its own user.
  [[ "$service" == mqtt ]] && { pass "mqtt read-only /, no-new-privileges, memory $usage of $((limit / 1048576)) MiB, log rotated ($rotation)"; continue; }
  pid="$(docker inspect -f '{{ .State.Pid }}' "$id")"
  uid="$(awk '/^Uid:/ { print $2 }' "/proc/$pid/status")"
  [[ "$uid" == 65532 ]] || fail "$service runs as uid $uid, not 65532"
  if docker cp "$stack/README.md" "$id:/written-by-test" >/dev/null 2>&1; then
    fail "$service: a write to / succeeded"
  fi
  pass "$service uid $uid, read-only /, no-new-privileges, memory $usage of $((limit / 1048576)) MiB, log rotated ($rotation)"
done

phase "health-monitor: a stopped service gets a proposed restart; approved runs, rejected does not"
ha_password="$(sed -n 's/^MQTT_PASSWORD_HOMEASSISTANT=//p' "$stack/.env")"
actions() { compose exec -T health-monitor /app/health-monitor actions list 2>/dev/null || true; }
# stage_of SERVICE → "stage id" of the newest action for its container
stage_of() {
  local name
  name="$(docker inspect -f '{{ .Name }}' "$(container "$1")")"
  actions | awk -v c="${name#/}" '$4 == c { line = $1 " " $2 } END { print line }'
}
# Its diagnose sweep (docker exec of each service's `diagnose --json`) reached every container.
deadline=$((SECONDS + 120))
until swept="$(sub -t homelab/health-monitor/status -C 1 -W 5 2>/dev/null | python3 -c '
import json, sys
status = json.loads(sys.stdin.read())
wanted = set(sys.argv[1:])
swept = status.get("diagnose", {})
missing = wanted - set(swept)
if missing:
    sys.exit("no diagnose yet for " + " ".join(sorted(missing)))
def verdict(report):
    return "ok" if report["ok"] else "FAIL " + ";".join(report["failing"])
print(" ".join(name + ":" + verdict(swept[name]) for name in sorted(wanted)))
' "${services[@]}")"; do
  ((SECONDS < deadline)) || fail "health-monitor's diagnose sweep did not reach every container within 120 s"
  sleep 5
done
pass "health-monitor ran diagnose --json in every container through the Docker API: $swept"
compose stop pv-forecast ev-forecast >/dev/null 2>&1
stopped_at=$SECONDS
deadline=$((SECONDS + 90))
until [[ "$(stage_of pv-forecast)" == pending* && "$(stage_of ev-forecast)" == pending* ]]; do
  ((SECONDS < deadline)) || { actions; fail "no restart proposed for the stopped services within 90 s"; }
  sleep 2
done
proposed_after=$((SECONDS - stopped_at))
[[ "$(inspect pv-forecast '{{ .State.Status }}')" == exited ]] || fail "pv-forecast was restarted without approval"
pass "stopped pv-forecast and ev-forecast: restarts proposed after ${proposed_after} s, nothing restarted yet"
approve_id="$(stage_of pv-forecast | cut -d' ' -f2)"
reject_id="$(stage_of ev-forecast | cut -d' ' -f2)"
decide() { # ID VERB: as Home Assistant's identity (the ACL lets only command givers decide)
  compose exec -T mqtt mosquitto_pub -h 127.0.0.1 -u homeassistant -P "$ha_password" -q 1 \
    -t "homelab/health-monitor/actions/$1/$2" -m '{"by":"ci"}'
}
decided_at=$SECONDS
decide "$approve_id" approve
decide "$reject_id" reject
deadline=$((SECONDS + 90))
until [[ "$(stage_of pv-forecast)" == completed* && "$(inspect pv-forecast '{{ .State.Status }}')" == running ]]; do
  ((SECONDS < deadline)) || { actions; fail "the approved restart of pv-forecast did not complete within 90 s"; }
  sleep 2
done
restarted_after=$((SECONDS - decided_at))
[[ "$(stage_of ev-forecast)" == rejected* ]] || { actions; fail "the rejected action is not in rejected/"; }
[[ "$(inspect ev-forecast '{{ .State.Status }}')" == exited ]] || fail "ev-forecast was restarted although rejected"
pass "approved over MQTT: pv-forecast restarted through the Docker API, action completed ${restarted_after} s after the approval; rejected: ev-forecast left stopped"
compose logs --no-color health-monitor >"$work/monitor.log" 2>&1
grep -q 'restart of .*pv-forecast.* (approved by ci)' "$work/monitor.log" \
  || fail "no alert about the restart in health-monitor's log (alerts go to the log without a Telegram token)"
pass "without a Telegram token the alerts are in health-monitor's log ($(grep -c '"alert"' "$work/monitor.log") alert lines)"
compose start ev-forecast >/dev/null 2>&1
deadline=$((SECONDS + 120))
until [[ "$(inspect ev-forecast '{{ .State.Health.Status }}')" == healthy && "$(inspect pv-forecast '{{ .State.Health.Status }}')" == healthy ]]; do
  ((SECONDS < deadline)) || fail "pv-forecast and ev-forecast not healthy again 120 s after the health-monitor phase"
  sleep 2
done

phase "dashboard: the one published port, behind its login"
web_port="$(sed -n 's/^DASHBOARD_PORT=//p' "$stack/.env")"
web_password="$(sed -n 's/^DASHBOARD_PASSWORD=//p' "$stack/.env")"
[[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$web_port/")" == 303 ]] \
  || fail "the dashboard on the published port $web_port does not send a stranger to its login"
jar="$work/cookies"
[[ "$(curl -s -o /dev/null -w '%{http_code}' -c "$jar" --data-urlencode username=admin \
  --data-urlencode "password=$web_password" "http://127.0.0.1:$web_port/login")" == 303 ]] \
  || fail "signing in to the dashboard failed"
page="$(curl -s -b "$jar" "http://127.0.0.1:$web_port/")"
for service in "${services[@]}"; do
  grep -q "data-service=\"$service\"" <<<"$page" || fail "the dashboard page does not show $service"
done
pass "dashboard on published port $web_port: a stranger goes to the login; signed in, the page lists ${#services[@]} services"

phase "broker restart: every service reconnects by itself"
declare -A started_at=()
for service in "${services[@]}"; do started_at[$service]="$(inspect "$service" '{{ .State.StartedAt }}')"; done
restart_at=$SECONDS
compose restart mqtt >/dev/null 2>&1
declare -A back=()
deadline=$((SECONDS + 120))
while ((${#back[@]} < ${#services[@]})) && ((SECONDS < deadline)); do
  while read -r service status uptime cycles _; do
    [[ "$status" == online ]] || continue
    [[ "$service" != example-service ]] || example_cycles="$cycles"
    [[ -n "${back[$service]:-}" ]] && continue
    back[$service]=$((SECONDS - restart_at))
    pass "$service online again $((back[$service])) s after the broker restart (uptime ${uptime} s: same process)"
  done < <(heartbeats 15 -R)
done
for service in "${services[@]}"; do
  [[ -n "${back[$service]:-}" ]] || fail "$service did not come back online within 120 s of the broker restart"
  [[ "$(inspect "$service" '{{ .State.StartedAt }} {{ .RestartCount }}')" == "${started_at[$service]} 0" ]] \
    || fail "$service was restarted instead of reconnecting"
done

phase "a service started while the broker is down waits, then connects"
compose stop mqtt >/dev/null 2>&1
compose restart example-service >/dev/null 2>&1
sleep 15
[[ "$(inspect example-service '{{ .State.Status }} {{ .RestartCount }}')" == "running 0" ]] \
  || fail "example-service did not wait for the broker: $(inspect example-service '{{ .State.Status }} restarts={{ .RestartCount }}')"
broker_back_at=$SECONDS
compose start mqtt >/dev/null 2>&1
waited=""
deadline=$((SECONDS + 90))
while [[ -z "$waited" ]] && ((SECONDS < deadline)); do
  while read -r service status _; do
    [[ "$service" == example-service && "$status" == online ]] && waited=$((SECONDS - broker_back_at))
  done < <(heartbeats 12 -R)
done
[[ -n "$waited" ]] || fail "example-service, started while the broker was down, never came online"
pass "example-service started 15 s before the broker: no crash, online $waited s after the broker came up"

phase "stop → retained offline; down, up → state survives"
compose stop "${services[@]}" >/dev/null 2>&1
expect_retained "after stop" offline shutdown
pass "after stop, retained offline (reason shutdown, not the will): ${services[*]}"
compose down --timeout 10 >/dev/null 2>&1
compose up -d mqtt >/dev/null 2>&1
deadline=$((SECONDS + 60))
until [[ "$(inspect mqtt '{{ .State.Health.Status }}')" == healthy ]]; do
  ((SECONDS < deadline)) || fail "the broker did not come back healthy after down/up"
  sleep 1
done
expect_retained "broker volume after down/up" offline shutdown
pass "broker volume kept the retained heartbeats across down/up"
compose up -d >/dev/null 2>&1
cycles_after=""
deadline=$((SECONDS + 60))
while [[ -z "$cycles_after" ]] && ((SECONDS < deadline)); do
  while read -r service status _ cycles _; do
    [[ "$service" == example-service && "$status" == online ]] && cycles_after="$cycles"
  done < <(heartbeats 12 -R)
done
[[ -n "$cycles_after" ]] || fail "example-service sent no heartbeat after down/up"
((example_cycles >= 1 && cycles_after >= example_cycles)) \
  || fail "example-service state was lost: $example_cycles cycles before down, $cycles_after after up"
pass "example-service state survived down/up: $example_cycles cycles before, $cycles_after after"

phase "backup → a volume wiped → restore: the state is back and diagnose passes"
backups="$work/backups"
backup() { (cd "$stack" && COMPOSE_PROJECT_NAME="$project" scripts/backup.sh --dir "$backups" --keep 2); }
backup >"$work/backup.log" 2>&1 || { cat "$work/backup.log"; fail "backup.sh failed"; }
archive="$(find "$backups" -name "homelab-$project-*.tar" | head -1)"
[[ -f "$archive" && -f "$archive.sha256" ]] || fail "backup.sh made no archive with its checksum: $(cat "$work/backup.log")"
saved_volumes="$(tar -tf "$archive" | grep -c '^volumes/.*\.tar\.gz$')"
saved_cycles="$(tar -xOf "$archive" volumes/example_service_data.tar.gz | tar -xzO ./state.json \
  | grep -o '"cycles": *[0-9]*' | grep -o '[0-9]*$')"
((saved_cycles >= 1)) || fail "the archive lacks example-service's state"
pass "backup.sh: $(basename "$archive"), $(du -h "$archive" | cut -f1), $saved_volumes volumes, example-service at $saved_cycles cycles"
example_volume="${project}_example_service_data"
compose stop example-service >/dev/null 2>&1
docker run --rm --network none --user 0:0 --entrypoint sh -v "$example_volume:/v" eclipse-mosquitto:2 \
  -c 'rm -rf /v/* /v/.[!.]*; test ! -e /v/state.json' || fail "could not wipe $example_volume"
# Damaged: one volume's data changed inside the archive, and an archive cut short.
damaged="$work/damaged"
mkdir -p "$damaged/content"
tar -C "$damaged/content" -xf "$archive"
echo "bit rot" >>"$damaged/content/volumes/example_service_data.tar.gz"
tar -C "$damaged/content" -cf "$damaged/changed.tar" manifest.txt SHA256SUMS volumes
head -c 4096 "$archive" >"$damaged/cut.tar"
for bad in changed cut; do
  refused="$(cd "$stack" && scripts/restore.sh "$damaged/$bad.tar" 2>&1)" && fail "restore.sh took the $bad archive: $refused"
  grep -q "refused: .*nothing was changed" <<<"$refused" || fail "the $bad archive was not refused clearly: $refused"
done
[[ "$(inspect example-service '{{ .State.Running }}')" == false ]] || fail "a refused restore started example-service"
pass "a changed or cut archive is refused before anything changes: $(tail -1 <<<"$refused" | cut -c1-120)"
restored="$(cd "$stack" && scripts/restore.sh "$archive" --volume example_service_data 2>&1)" \
  || { echo "$restored"; fail "restore.sh failed"; }
grep -q "diagnose .*example-service.*: passed" <<<"$restored" || fail "restore.sh ran no diagnose: $restored"
cycles_restored=""
deadline=$((SECONDS + 60))
while [[ -z "$cycles_restored" ]] && ((SECONDS < deadline)); do
  while read -r service status _ cycles _; do
    [[ "$service" == example-service && "$status" == online ]] && cycles_restored="$cycles"
  done < <(heartbeats 12 -R)
done
((cycles_restored >= saved_cycles)) \
  || fail "example-service's state did not come back: ${cycles_restored:-no heartbeat} cycles after restore, $saved_cycles saved"
pass "restore.sh: example-service's wiped volume is back ($cycles_restored cycles, $saved_cycles saved), diagnose passed"
for _ in 1 2; do sleep 1; backup >"$work/backup.log" 2>&1 || fail "a later backup failed: $(cat "$work/backup.log")"; done
kept="$(find "$backups" -name "homelab-$project-*.tar" | wc -l)"
[[ "$kept" -eq 2 && ! -f "$archive" ]] || fail "with --keep 2 after 3 backups, $kept archives are left (the oldest: $([[ -f "$archive" ]] && echo kept || echo removed))"
pass "backup retention: 3 backups with --keep 2 leave the newest 2"
# Encrypted, for a recipient of this copy's own (the committed recipient's key is not kept).
age_key="$work/age-key.txt"
age-keygen -o "$age_key" 2>/dev/null
sed -i "s/age1[0-9a-z]*/$(age-keygen -y "$age_key")/" "$stack/.sops.yaml"
(cd "$stack" && COMPOSE_PROJECT_NAME="$project" scripts/backup.sh --dir "$work/encrypted" --encrypt) \
  >"$work/backup.log" 2>&1 || fail "backup.sh --encrypt failed: $(cat "$work/backup.log")"
sealed="$(find "$work/encrypted" -name "homelab-$project-*.tar.age")"
[[ -f "$sealed" && ! -f "${sealed%.age}" ]] || fail "backup.sh --encrypt left no .tar.age alone: $(ls "$work/encrypted")"
tar -tf "$sealed" >/dev/null 2>&1 && fail "the encrypted archive reads as a plain tar"
age-keygen -o "$work/other-key.txt" 2>/dev/null
refused="$(cd "$stack" && SOPS_AGE_KEY_FILE="$work/other-key.txt" scripts/restore.sh "$sealed" 2>&1)" \
  && fail "restore.sh took an archive encrypted for another key: $refused"
grep -q "does not decrypt with .*nothing was changed" <<<"$refused" || fail "the wrong key was not named: $refused"
restored="$(cd "$stack" && SOPS_AGE_KEY_FILE="$age_key" scripts/restore.sh "$sealed" --volume example_service_data 2>&1)" \
  || { echo "$restored"; fail "restore.sh of the encrypted archive failed"; }
grep -q "diagnose .*example-service.*: passed" <<<"$restored" || fail "the encrypted restore ran no diagnose: $restored"
pass "backup.sh --encrypt: $(basename "$sealed") is age-encrypted, refused with another key, restored with the project's key (diagnose passed)"

phase "deploy-node.sh: a deploy killed mid-way resumes and completes"
node_check="$PWD/target/debug/node-check"
[[ -x "$node_check" ]] || cargo build --quiet -p repo-checks --bin node-check
deploy_log="$work/deploy.log"
(cd "$stack" && exec env NODE_CHECK="$node_check" scripts/deploy-node.sh main --service example-service) \
  >"$deploy_log" 2>&1 &
deploy_pid=$!
deadline=$((SECONDS + 60))
until grep -q "^== deploy" "$deploy_log"; do
  ((SECONDS < deadline)) || fail "deploy-node.sh never reached its deploy stage: $(cat "$deploy_log")"
  kill -0 "$deploy_pid" 2>/dev/null || fail "deploy-node.sh ended before its deploy stage: $(cat "$deploy_log")"
  sleep 0.1
done
kill -9 "$deploy_pid"
wait "$deploy_pid" 2>/dev/null || true
interrupted_at="$(sed -n 's/^stage=//p' "$stack/.deploy/main.state")"
[[ "$interrupted_at" == validate || "$interrupted_at" == deploy ]] \
  || fail "after the kill the deploy state says '$interrupted_at': $(cat "$deploy_log")"
resumed="$(cd "$stack" && NODE_CHECK="$node_check" scripts/deploy-node.sh main --resume 2>&1)" \
  || { echo "$resumed"; fail "deploy-node.sh --resume failed"; }
grep -q "resuming the deploy of main .* after stage $interrupted_at" <<<"$resumed" || fail "not resumed: $resumed"
grep -q "verify: 1 healthy, diagnose passed" <<<"$resumed" || fail "resume did not verify: $resumed"
grep -q "^complete: main" <<<"$resumed" || fail "resume did not complete: $resumed"
[[ "$(inspect example-service '{{ .HostConfig.OomScoreAdj }} {{ .HostConfig.Memory }}')" == "0 33554432" ]] \
  || fail "example-service does not run with main's override"
grep -q "^== prepare" <<<"$resumed" && fail "resume ran its finished stages again: $resumed"
waited="did not wait: the killed deploy's compose had ended"
grep -q "^another deploy of main is still running" <<<"$resumed" && waited="waited for the killed deploy's compose (the lock)"
pass "deploy-node.sh main: killed after '$interrupted_at', --resume $waited, then ran the rest; example-service healthy with main's override, diagnose passed"
override="$stack/hosts/main/runtime/example-service/docker-compose.override.yml"
sed -i 's/mem_limit: 32m/mem_limit: 5g/' "$override"
over="$(cd "$stack" && NODE_CHECK="$node_check" scripts/deploy-node.sh main --service example-service --stage validate 2>&1)" \
  && fail "an over-budget override passed validate: $over"
sed -i 's/mem_limit: 5g/mem_limit: 32m/' "$override"
grep -q "over its budget of 4096 MiB" <<<"$over" || fail "the over-budget node was not named: $over"
pass "deploy-node.sh validate refuses an override over main's budget: $(grep -o 'node main: .*' <<<"$over" | head -1)"

phase "two sites on two private networks: the edge keeps deciding through a cut link, nothing lost"
# The main site's broker and the edge site's broker, each on its own internal network;
# the edge broker's second network is the link. The edge runs example-service (a tick
# a second); its broker's bridge comes from inventory/topology.yaml (bridge-config).
bridge_bin="$PWD/target/debug/bridge-config"
[[ -x "$bridge_bin" ]] || cargo build --quiet -p repo-checks --bin bridge-config
main_net="${project}_site_main" edge_net="${project}_site_edge"
main_broker="${project}-main-broker" edge_broker="${project}-edge-broker"
site_containers=("$main_broker" "$edge_broker" "${project}-main-listener" "${project}-edge-example")
docker network create --internal "$main_net" >/dev/null
docker network create --internal "$edge_net" >/dev/null
mkdir -p "$work/sites/main" "$work/sites/edge"
broker_conf='listener 1883
allow_anonymous true
persistence true
persistence_location /tmp/
max_queued_messages 10000'
echo "$broker_conf" >"$work/sites/main/mosquitto.conf"
{ echo "$broker_conf"; "$bridge_bin" edge "main=$main_broker:1883"; } >"$work/sites/edge/mosquitto.conf"
grep -q "topic homelab/# both 1" "$work/sites/edge/mosquitto.conf" || fail "bridge-config gave no homelab/# bridge"
site_broker() { # NAME NETWORK SITE
  docker run -d --name "$1" --network "$2" --user 0:0 -v "$work/sites/$3:/conf:ro" \
    --entrypoint mosquitto eclipse-mosquitto:2 -c /conf/mosquitto.conf >/dev/null
}
site_broker "$main_broker" "$main_net" main
site_broker "$edge_broker" "$edge_net" edge
docker network connect "$main_net" "$edge_broker"
# The main side's listener: QoS 1, a persistent session, every tick with its cycle.
docker run -d --name "${project}-main-listener" --network "$main_net" --entrypoint mosquitto_sub \
  eclipse-mosquitto:2 -h "$main_broker" -t homelab/example-service/tick -q 1 -c -i main-listener >/dev/null
sleep 1
docker run -d --name "${project}-edge-example" --network "$edge_net" -v /app/data \
  -e MQTT_HOST="$edge_broker" -e MQTT_PORT=1883 -e EXAMPLE_INTERVAL_SECONDS=1 \
  -e HEARTBEAT_INTERVAL_SECONDS=5 homelab/example-service:latest >/dev/null
# cycles_on_main → the distinct cycle numbers the main side has, one per line, sorted
cycles_on_main() {
  docker logs "${project}-main-listener" 2>/dev/null | grep -o '"cycle":[0-9]*' | cut -d: -f2 | sort -n -u
}
deadline=$((SECONDS + 60))
until (($(cycles_on_main | wc -l) >= 3)); do
  ((SECONDS < deadline)) || fail "no ticks crossed the bridge with the link up: $(docker logs "$edge_broker" 2>&1 | tail -5)"
  sleep 1
done
docker network disconnect "$main_net" "$edge_broker"
cut_at=$SECONDS
before_cut="$(cycles_on_main | tail -1)"
local_ticks="$(docker exec "$edge_broker" mosquitto_sub -h localhost -t homelab/example-service/tick -C 5 -W 15 | grep -c '"cycle"')" \
  || fail "the edge stopped deciding with the link cut"
sleep 10
during_cut="$(cycles_on_main | tail -1)"
((during_cut <= before_cut + 1)) || fail "ticks reached the main side through a cut link ($before_cut → $during_cut)"
last_edge="$(docker exec "$edge_broker" mosquitto_sub -h localhost -t homelab/example-service/tick -C 1 -W 5 | grep -o '"cycle":[0-9]*' | cut -d: -f2)"
docker network connect "$main_net" "$edge_broker"
restored_at=$SECONDS
deadline=$((SECONDS + 90))
while :; do
  mapfile -t got < <(cycles_on_main)
  first="${got[0]}" last="${got[-1]}"
  ((last >= last_edge && ${#got[@]} == last - first + 1)) && break
  ((SECONDS < deadline)) || fail "after the link came back the main side has ${#got[@]} cycles $first..$last, missing some up to $last_edge"
  sleep 1
done
caught_up=$((SECONDS - restored_at))
queued=$((last_edge - before_cut))
pass "edge site: $local_ticks ticks decided locally with the link cut $((restored_at - cut_at)) s; $queued queued ticks reached main $caught_up s after the link was back; ${#got[@]} cycles $first..$last on main, none missing"
docker rm -fv "${site_containers[@]}" >/dev/null
docker network rm "$main_net" "$edge_net" >/dev/null

phase "down --volumes leaves nothing behind"
compose down --volumes --remove-orphans --timeout 10 >/dev/null 2>&1
left="$(comm -13 <(echo "$volumes_before") <(docker volume ls -q | sort) | tr '\n' ' ')"
[[ -z "${left// /}" ]] || fail "volumes left behind after down --volumes: $left"
[[ -z "$(docker ps -aq --filter "label=com.docker.compose.project=$project")" ]] || fail "containers left behind"
pass "down --volumes removed every container and volume the stack made"

phase "done"
echo "container test passed in $((SECONDS - t0)) s; figures:"
printf '   %s\n' "${figures[@]}"
echo "container checks: $checks passed, 0 failed"
