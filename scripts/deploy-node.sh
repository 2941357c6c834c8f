#!/usr/bin/env bash
# Deploys one node's services (hosts/<node>/services.yaml) with Compose, each with its
# hosts/<node>/runtime/<service>/docker-compose.override.yml, in seed 002's stages:
#   prepare   the node's services and override files, the Compose tool, .env
#   validate  the merged Compose files parse; the node fits its memory budget and its
#             control services carry oom_score_adj -900 (repo-checks' node-check)
#   deploy    docker compose up -d for those services
#   verify    each container healthy and its `diagnose --json` passing
#   diagnose  (only when verify fails) each failing service's diagnose and last logs
#   complete  the revision is recorded as deployed
# The stage reached is saved in .deploy/<node>.state after each one, so a deploy that
# was interrupted (a reboot, a lost SSH session, a kill) continues with --resume.
# Works with docker-compose 1.29 and Compose v2.
set -euo pipefail

stages=(prepare validate deploy verify complete)

usage() {
  cat <<'USAGE'
usage: scripts/deploy-node.sh NODE [--resume] [--stage STAGE] [--service NAME]...

  --resume        continue an interrupted deploy of NODE after its last finished stage
  --stage STAGE   run only STAGE (prepare, validate, deploy, verify, complete)
  --service NAME  only this service of the node (repeat for more)
Environment: DEPLOY_VERIFY_TIMEOUT (seconds, default 180), DEPLOY_LOCK_WAIT (seconds a
deploy waits for another one of the same node, default 300), NODE_CHECK (a built
node-check binary; else cargo runs it; without either the check is skipped with a
warning, as CI runs it on every commit).
USAGE
}

fail() {
  echo "deploy-node.sh: $*" >&2
  exit 1
}

node=""
resume=0
only_stage=""
only_services=()
while (($#)); do
  case "$1" in
    --resume) resume=1; shift ;;
    --stage) only_stage="${2:?--stage needs a stage}"; shift 2 ;;
    --service) only_services+=("${2:?--service needs a name}"); shift 2 ;;
    -h|--help) usage; exit 0 ;;
    -*) echo "deploy-node.sh: unknown option '$1'" >&2; usage >&2; exit 2 ;;
    *) [[ -z "$node" ]] || { usage >&2; exit 2; }; node="$1"; shift ;;
  esac
done
[[ -n "$node" ]] || { usage >&2; exit 2; }
if [[ -n "$only_stage" ]]; then
  printf '%s\n' "${stages[@]}" | grep -qx "$only_stage" \
    || fail "--stage must be one of ${stages[*]}, got '$only_stage'"
fi
cd "$(dirname "$0")/.."
[[ -f "hosts/$node/services.yaml" ]] \
  || fail "no hosts/$node/services.yaml (nodes: $(find hosts -mindepth 1 -maxdepth 1 -type d -printf '%f ' | sort))"

mkdir -p .deploy
state=".deploy/$node.state"
# One deploy of a node at a time. Compose inherits the lock, so a deploy whose script
# was killed holds it until its `up` has finished; a resume waits for that.
exec 9>".deploy/$node.lock"
if ! flock -n 9; then
  lock_wait="${DEPLOY_LOCK_WAIT:-300}"
  echo "another deploy of $node is still running (it holds .deploy/$node.lock): waiting up to $lock_wait s"
  flock -w "$lock_wait" 9 || fail "another deploy of $node is still running after $lock_wait s; see: ps -ef | grep -e deploy-node -e compose"
fi
revision="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"

# state_get KEY → its value in the state file (empty when absent)
state_get() { sed -n "s/^$1=//p" "$state" 2>/dev/null | tail -1; }
# state_set KEY VALUE: written by rename, so a kill never leaves half a file
state_set() {
  local temp
  temp="$(mktemp "$state.XXXXXX")"
  { grep -v "^$1=" "$state" 2>/dev/null || true; echo "$1=$2"; } >"$temp"
  mv "$temp" "$state"
}

if docker compose version >/dev/null 2>&1; then
  compose_tool=(docker compose)
elif command -v docker-compose >/dev/null 2>&1; then
  compose_tool=(docker-compose)
else
  fail "neither 'docker compose' nor 'docker-compose' is installed"
fi

first=0
if ((resume)); then
  [[ -f "$state" ]] || fail "no interrupted deploy of $node to resume (no $state)"
  done_stage="$(state_get stage)"
  [[ "$done_stage" != complete ]] || fail "the last deploy of $node completed; start a new one without --resume"
  [[ "$(state_get revision)" == "$revision" ]] \
    || fail "the interrupted deploy was of revision $(state_get revision), this checkout is $revision: start anew without --resume"
  for i in "${!stages[@]}"; do [[ "${stages[$i]}" == "$done_stage" ]] && first=$((i + 1)); done
  read -ra only_services <<<"$(state_get services)"
  echo "resuming the deploy of $node ($revision) after stage ${done_stage:-none}"
elif [[ -z "$only_stage" ]]; then
  rm -f "$state"
  state_set revision "$revision"
  state_set started "$(date -u +%FT%TZ)"
fi

# The node's services, as listed, narrowed by --service.
mapfile -t listed < <(sed -n 's/^- name: *//p' "hosts/$node/services.yaml")
services=()
for service in "${listed[@]}"; do
  if ((${#only_services[@]})); then
    printf '%s\n' "${only_services[@]}" | grep -qx "$service" || continue
  fi
  services+=("$service")
done
for wanted in "${only_services[@]}"; do
  printf '%s\n' "${listed[@]}" | grep -qx "$wanted" \
    || fail "$wanted is not one of node $node's services (${listed[*]})"
done
((${#services[@]})) || fail "node $node has no services to deploy"
# Every override of the node, also when --service narrows what is deployed: a
# dependency (the broker) merged without its own override would be re-created
# without its memory limit and OOM shield.
files=(-f docker-compose.yml)
for service in "${listed[@]}"; do
  files+=(-f "hosts/$node/runtime/$service/docker-compose.override.yml")
done
compose() { "${compose_tool[@]}" "${files[@]}" "$@"; }

stage_prepare() {
  [[ -f .env ]] || fail ".env is missing: decrypt it (scripts/secrets-decrypt.sh) or copy .env.example"
  local file
  for file in "${files[@]}"; do
    [[ "$file" == -f || -f "$file" ]] || fail "$file is missing"
  done
  state_set services "${services[*]}"
  echo "prepare: ${#services[@]} services of $node (${services[*]}) with ${compose_tool[*]}"
}

stage_validate() {
  compose config -q || fail "the Compose files of $node do not merge (see above)"
  if [[ -n "${NODE_CHECK:-}" ]]; then
    "$NODE_CHECK" "$node" || fail "node $node does not fit (above)"
  elif command -v cargo >/dev/null 2>&1; then
    cargo run --quiet -p repo-checks --bin node-check -- "$node" || fail "node $node does not fit (above)"
  else
    echo "validate: WARN: no cargo and no NODE_CHECK here: the budget check is left to CI"
  fi
  echo "validate: Compose files merge; node checked"
}

stage_deploy() {
  # Narrowed by --service: only those, their dependencies (the broker) left as they run.
  local no_deps=()
  ((${#only_services[@]})) && no_deps=(--no-deps)
  compose up -d "${no_deps[@]}" "${services[@]}" || fail "compose up failed for ${services[*]}"
  echo "deploy: up -d ${no_deps[*]} ${services[*]}"
}

# diagnose_service NAME → 0 when the service's `diagnose --json` passes in its container
diagnose_service() {
  [[ -d "services/$1" ]] || return 0 # infrastructure: its healthcheck is the check
  compose exec -T "$1" /app/service diagnose --json >".deploy/$node.$1.diagnose.json" 2>&1
}

stage_verify() {
  local deadline=$((SECONDS + ${DEPLOY_VERIFY_TIMEOUT:-180})) waiting service id health
  failing=()
  while :; do
    waiting=()
    for service in "${services[@]}"; do
      id="$(compose ps -q "$service" 2>/dev/null | head -1)"
      health="$( [[ -n "$id" ]] && docker inspect -f '{{ if .State.Health }}{{ .State.Health.Status }}{{ else }}{{ .State.Status }}{{ end }}' "$id" 2>/dev/null || echo missing)"
      [[ "$health" == healthy || "$health" == running ]] || waiting+=("$service:$health")
    done
    ((${#waiting[@]} == 0)) && break
    if ((SECONDS >= deadline)); then
      failing=("${waiting[@]%%:*}")
      echo "verify: not healthy within ${DEPLOY_VERIFY_TIMEOUT:-180} s: ${waiting[*]}" >&2
      return 1
    fi
    sleep 2
  done
  for service in "${services[@]}"; do
    diagnose_service "$service" || failing+=("$service")
  done
  if ((${#failing[@]})); then
    echo "verify: diagnose failed: ${failing[*]}" >&2
    return 1
  fi
  echo "verify: ${#services[@]} healthy, diagnose passed"
}

stage_diagnose() {
  local service
  for service in "${failing[@]}"; do
    echo "---- $service: diagnose (the JSON of verify is in .deploy/$node.$service.diagnose.json)"
    if [[ -d "services/$service" ]]; then
      compose exec -T "$service" /app/service diagnose 2>&1 | sed 's/^/  /' || true
    fi
    echo "---- $service: last logs"
    compose logs --no-color --tail 30 "$service" 2>&1 | sed 's/^/  /'
  done
}

stage_complete() {
  echo "$revision $(date -u +%FT%TZ) ${services[*]}" >>".deploy/$node.deployed"
  echo "complete: $node at $revision"
}

failing=()
for i in "${!stages[@]}"; do
  stage="${stages[$i]}"
  if [[ -n "$only_stage" ]]; then
    [[ "$stage" == "$only_stage" ]] || continue
  elif ((i < first)); then
    continue
  fi
  echo "== $stage"
  if ! "stage_$stage"; then
    stage_diagnose
    fail "stage $stage failed; fix it and run: scripts/deploy-node.sh $node --resume"
  fi
  [[ -n "$only_stage" ]] || state_set stage "$stage"
done
