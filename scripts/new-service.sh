#!/usr/bin/env bash
# Scaffolds services/NAME from the example-service template: crate, binary, topics,
# struct names, Compose entry (the one Dockerfile builds it from SERVICE) and .env.example section. The result
# builds, passes its own tests and answers `diagnose` without manual edits.
set -euo pipefail

usage() {
  cat <<'USAGE'
usage: scripts/new-service.sh NAME

NAME is kebab-case: lower-case letters and digits in words joined by '-',
starting with a letter (e.g. garage-door). Creates services/NAME and adds it to
docker-compose.yml and .env.example. Refuses to overwrite anything.
USAGE
}

fail() {
  echo "new-service.sh: $2" >&2
  exit "$1"
}

case "${1:-}" in
  -h|--help) usage; exit 0 ;;
  "") usage >&2; exit 2 ;;
esac
[[ $# -eq 1 ]] || fail 2 "expected exactly one NAME, got $#"
name="$1"
[[ "$name" =~ ^[a-z][a-z0-9]*(-[a-z0-9]+)*$ ]] \
  || fail 2 "'$name' is not a kebab-case name (lower-case words joined by '-', e.g. garage-door)"
cd "$(dirname "$0")/.."
template=services/example-service
[[ -d "$template" ]] || fail 1 "the template $template is missing"
[[ ! -e "services/$name" ]] || fail 1 "services/$name already exists; pick another name"
if grep -q "^  $name:" docker-compose.yml; then
  fail 1 "docker-compose.yml already has a service '$name'"
fi

# garage-door → stem garage-door; garage-door-service → stem garage-door
stem="${name%-service}"
snake="${stem//-/_}"
upper="${snake^^}"
pascal=""
IFS='-' read -ra words <<<"$stem"
for word in "${words[@]}"; do pascal+="${word^}"; done
crate_snake="${name//-/_}"
password_var="MQTT_PASSWORD_${crate_snake^^}"

cp -r "$template" "services/$name"
rm -rf "services/$name/target"
while IFS= read -r -d '' file; do
  sed -i \
    -e "s/example-service: the template every new service is copied from/$name: scaffolded from the TEMPLATE_ORIGIN template/" \
    -e "s/example-service/$name/g" \
    -e "s/example_service/$crate_snake/g" \
    -e "s/Example/$pascal/g" \
    -e "s/EXAMPLE_/${upper}_/g" \
    -e "s/example_interval/${snake}_interval/g" \
    -e "s/TEMPLATE_ORIGIN/example-service/g" \
    "$file"
done < <(find "services/$name" -type f -print0)
# The template runs only under its own Compose profile; a new service always runs.
sed -i 's/^profiles: .*/profiles: []/' "services/$name/service.yaml"

compose_block="  $name:
    <<: *service
    build:
      context: .
      args:
        SERVICE: $name
    image: homelab/$name:latest
    environment:
      <<: *service-env
      MQTT_USERNAME: $name
      MQTT_PASSWORD: \${$password_var:?set $password_var in .env (scripts/mqtt-users.sh)}
      ${upper}_INTERVAL_SECONDS:
    volumes:
      - ${snake}_data:/app/data
    mem_limit: 32m
"
insert_above() { # file marker text
  local file="$1" marker="$2" text="$3" tmp
  grep -qF "$marker" "$file" || fail 1 "$file has no line '$marker'"
  tmp="$(mktemp)"
  awk -v marker="$marker" -v text="$text" 'index($0, marker) { printf "%s\n", text } { print }' "$file" >"$tmp"
  cat "$tmp" >"$file"
  rm -f "$tmp"
}
insert_above docker-compose.yml "# new-service.sh inserts new services above this line" "$compose_block"
insert_above docker-compose.yml "# new-service.sh inserts new volumes above this line" "  ${snake}_data:"
# An identity the broker already knows (reserved, like orchestrator's) is not added twice.
if ! grep -q "^      $password_var:" docker-compose.yml; then
  insert_above docker-compose.yml "# new-service.sh inserts new broker identities above this line" "      $password_var:"
fi
if ! grep -q "^  - $password_var\$" infrastructure/mosquitto/service.yaml; then
  insert_above infrastructure/mosquitto/service.yaml "# new-service.sh inserts new broker identities above this line" "  - $password_var"
fi
printf '\n# --- %s %s\n%s_INTERVAL_SECONDS=30\n# Its broker identity (see MQTT_PASSWORD_* above)\n%s=change-me-%s\n' \
  "$name" "$(printf -- '-%.0s' $(seq $((75 - ${#name}))))" "$upper" "$password_var" "$name" >>.env.example

cat <<DONE
created services/$name (struct ${pascal}Service, settings ${upper}_*)
added it to docker-compose.yml, .env.example and the broker's contract; its own
contract is services/$name/service.yaml (add it to a node in hosts/<node>/)
next:
  cargo test -p $name
  cargo run -p $name -- diagnose
DONE
