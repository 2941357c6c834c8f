#!/usr/bin/env bash
# Puts back what scripts/backup.sh saved. Everything is checked before anything is
# touched: the archive's own .sha256 (when beside it), that it opens (and decrypts),
# and every file against its SHA256SUMS; a damaged archive is refused and nothing
# changes. Then the containers using the restored volumes are stopped, each volume is
# emptied and filled from the archive, the containers (also ones that had stopped)
# are started, and each one's `diagnose` runs. Exit 0 only when every diagnose passes.
set -euo pipefail

usage() {
  cat <<'USAGE'
usage: scripts/restore.sh ARCHIVE [--project NAME] [--volume NAME]...

  ARCHIVE         backups/homelab-<project>-<time>.tar (or .tar.age: needs age and
                  the key in SOPS_AGE_KEY_FILE, default .sops/age-key.txt)
  --project NAME  restore into this Compose project (default: the archive's)
  --volume NAME   only this volume (its name in docker-compose.yml, e.g.
                  ev_forecast_data); repeat for more. Default: every volume.
USAGE
}

fail() {
  echo "restore.sh: $*" >&2
  exit 1
}
refuse() {
  echo "restore.sh: refused: $*; nothing was changed" >&2
  exit 1
}

archive=""
project=""
only=()
while (($#)); do
  case "$1" in
    --project) project="${2:?--project needs a name}"; shift 2 ;;
    --volume) only+=("${2:?--volume needs a name}"); shift 2 ;;
    -h|--help) usage; exit 0 ;;
    -*) echo "restore.sh: unknown option '$1'" >&2; usage >&2; exit 2 ;;
    *) [[ -z "$archive" ]] || { usage >&2; exit 2; }; archive="$1"; shift ;;
  esac
done
[[ -n "$archive" ]] || { usage >&2; exit 2; }
[[ -f "$archive" ]] || fail "$archive does not exist"
archive="$(cd "$(dirname "$archive")" && pwd)/$(basename "$archive")"
cd "$(dirname "$0")/.."

if [[ -f "$archive.sha256" ]]; then
  (cd "$(dirname "$archive")" && sha256sum --check --status "$(basename "$archive").sha256") \
    || refuse "$archive does not match $archive.sha256 (damaged or changed)"
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
plain="$archive"
if [[ "$archive" == *.age ]]; then
  command -v age >/dev/null 2>&1 || fail "$archive is encrypted: install age"
  key="${SOPS_AGE_KEY_FILE:-.sops/age-key.txt}"
  [[ -f "$key" ]] || fail "$archive is encrypted: the age key $key is missing (SOPS_AGE_KEY_FILE)"
  plain="$work/archive.tar"
  age -d -i "$key" -o "$plain" "$archive" 2>"$work/age.log" \
    || refuse "$archive does not decrypt with $key: $(head -1 "$work/age.log")"
fi
mkdir -p "$work/content"
tar -C "$work/content" -xf "$plain" 2>"$work/tar.log" \
  || refuse "$archive is not a readable archive: $(head -1 "$work/tar.log")"
[[ -f "$work/content/SHA256SUMS" && -f "$work/content/manifest.txt" ]] \
  || refuse "$archive has no SHA256SUMS and manifest.txt: not made by backup.sh"
if ! (cd "$work/content" && sha256sum --check --quiet SHA256SUMS >"$work/sums.log" 2>&1); then
  refuse "checksums do not match in $archive: $(grep -v '^sha256sum:' "$work/sums.log" | tr '\n' ' ')"
fi
# Every volume file must be listed: a file slipped in without a checksum is refused too.
for file in "$work/content/volumes/"*.tar.gz; do
  grep -q " volumes/$(basename "$file")\$" "$work/content/SHA256SUMS" \
    || refuse "$(basename "$file") in $archive has no checksum"
done
project="${project:-$(sed -n 's/^project=//p' "$work/content/manifest.txt")}"
[[ -n "$project" ]] || refuse "the manifest names no project; give --project"

mapfile -t saved < <(sed -n 's/^volume=//p' "$work/content/manifest.txt")
volumes=()
for short in "${saved[@]}"; do
  if ((${#only[@]})); then
    printf '%s\n' "${only[@]}" | grep -qx "$short" || continue
  fi
  volumes+=("$short")
done
for wanted in "${only[@]}"; do
  printf '%s\n' "${saved[@]}" | grep -qx "$wanted" \
    || refuse "$archive holds no volume $wanted (it has: ${saved[*]})"
done

helper="${BACKUP_HELPER_IMAGE:-$(awk '/image: eclipse-mosquitto:/ { print $2; exit }' docker-compose.yml)}"
docker image inspect "$helper" >/dev/null 2>&1 \
  || fail "the helper image $helper is not on this machine (set BACKUP_HELPER_IMAGE)"

# The containers that use these volumes, stopped while their data changes.
containers=()
for short in "${volumes[@]}"; do
  while read -r container; do
    [[ -n "$container" ]] && containers+=("$container")
  done < <(docker ps -aq --filter "volume=${project}_${short}")
done
mapfile -t containers < <(printf '%s\n' "${containers[@]}" | sort -u | sed '/^$/d')
if ((${#containers[@]})); then
  echo "stopping $(docker inspect -f '{{ .Name }}' "${containers[@]}" | tr -d / | tr '\n' ' ')"
  docker stop --time 10 "${containers[@]}" >/dev/null
fi

for short in "${volumes[@]}"; do
  volume="${project}_${short}"
  docker volume inspect "$volume" >/dev/null 2>&1 \
    || docker volume create --label "com.docker.compose.project=$project" \
      --label "com.docker.compose.volume=$short" "$volume" >/dev/null
  docker run --rm --network none --user 0:0 --entrypoint sh \
    -v "$volume:/volume" -v "$work/content/volumes:/backup:ro" "$helper" \
    -c 'find /volume -mindepth 1 -maxdepth 1 -exec rm -rf {} + && tar -C /volume -xzf "/backup/$1.tar.gz"' \
    restore "$short" || fail "could not restore volume $volume (its containers stay stopped)"
  echo "restored volume $volume"
done

if ((${#containers[@]} == 0)); then
  echo "restore: ${#volumes[@]} volumes of project $project; no container was using them"
  exit 0
fi
docker start "${containers[@]}" >/dev/null
failed=0
for container in "${containers[@]}"; do
  name="$(docker inspect -f '{{ .Name }}' "$container" | tr -d /)"
  service="$(docker inspect -f '{{ index .Config.Labels "com.docker.compose.service" }}' "$container")"
  [[ -n "$service" && -d "services/$service" ]] || {
    echo "diagnose $name: not one of our services (started again)"
    continue
  }
  if docker exec "$container" /app/service diagnose >"$work/diagnose.log" 2>&1; then
    echo "diagnose $name: passed"
  else
    echo "diagnose $name: FAILED" >&2
    sed 's/^/  /' "$work/diagnose.log" >&2
    failed=1
  fi
done
((failed == 0)) || fail "restored, but a diagnose failed (above)"
echo "restore: ${#volumes[@]} volumes of project $project; ${#containers[@]} containers started, diagnose passed"
