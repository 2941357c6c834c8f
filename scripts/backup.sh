#!/usr/bin/env bash
# Snapshots a Compose project's named volumes (the broker's persistence, every
# service's DATA_DIR, the orchestrator's memory) into one dated archive:
#   backups/homelab-<project>-<UTC time>.tar   volumes/<volume>.tar.gz, manifest.txt,
#                                              SHA256SUMS (of each of them)
#   ….tar.sha256                               the archive's own checksum
# With --encrypt the archive is encrypted with age for the project's recipient
# (.sops.yaml) and ends in .tar.age. Only the newest --keep archives stay.
# Taken while the services run: each service writes its files by rename, so every
# file in the snapshot is whole. scripts/restore.sh puts one back.
set -euo pipefail

usage() {
  cat <<'USAGE'
usage: scripts/backup.sh [--project NAME] [--dir DIR] [--keep N] [--encrypt]

  --project NAME  the Compose project (default: COMPOSE_PROJECT_NAME from the
                  environment or .env, else "homelab")
  --dir DIR       where archives go (default: backups/)
  --keep N        archives of this project to keep, newest first (default:
                  BACKUP_KEEP or 7; the one just made always stays)
  --encrypt       encrypt for the age recipient in .sops.yaml (needs age)
USAGE
}

fail() {
  echo "backup.sh: $*" >&2
  exit 1
}

cd "$(dirname "$0")/.."
project="${COMPOSE_PROJECT_NAME:-}"
dir="backups"
keep="${BACKUP_KEEP:-7}"
encrypt=0
while (($#)); do
  case "$1" in
    --project) project="${2:?--project needs a name}"; shift 2 ;;
    --dir) dir="${2:?--dir needs a folder}"; shift 2 ;;
    --keep) keep="${2:?--keep needs a number}"; shift 2 ;;
    --encrypt) encrypt=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "backup.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
done
[[ "$keep" =~ ^[1-9][0-9]*$ ]] || fail "--keep must be a whole number of at least 1, got '$keep'"
if [[ -z "$project" && -f .env ]]; then
  project="$(sed -n 's/^COMPOSE_PROJECT_NAME=//p' .env | tail -1)"
fi
project="${project:-homelab}"

# The broker's image has sh and tar on every node that runs the stack (no registry needed).
helper="${BACKUP_HELPER_IMAGE:-$(awk '/image: eclipse-mosquitto:/ { print $2; exit }' docker-compose.yml)}"
docker image inspect "$helper" >/dev/null 2>&1 \
  || fail "the helper image $helper is not on this machine (set BACKUP_HELPER_IMAGE to an image with sh and tar)"

mapfile -t volumes < <(docker volume ls -q --filter "label=com.docker.compose.project=$project" | sort)
((${#volumes[@]})) || fail "Compose project '$project' has no volumes (is --project / COMPOSE_PROJECT_NAME right? see docker volume ls)"

recipient=""
if ((encrypt)); then
  command -v age >/dev/null 2>&1 || fail "--encrypt needs age (apt install age)"
  recipient="$(sed -n 's/^ *age: *\(age1[0-9a-z]*\).*/\1/p' .sops.yaml | head -1)"
  [[ -n "$recipient" ]] || fail "no age recipient in .sops.yaml"
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/volumes" "$dir"
stamp="$(date -u +%Y%m%dT%H%M%SZ)"
{
  echo "project=$project"
  echo "created=$stamp"
  echo "host=$(hostname)"
  echo "revision=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
} >"$work/manifest.txt"
for volume in "${volumes[@]}"; do
  short="$(docker volume inspect -f '{{ index .Labels "com.docker.compose.volume" }}' "$volume")"
  short="${short:-${volume#"${project}"_}}"
  docker run --rm --network none --user 0:0 --entrypoint tar \
    -v "$volume:/volume:ro" -v "$work/volumes:/backup" "$helper" \
    -C /volume -czf "/backup/$short.tar.gz" . \
    || fail "could not read volume $volume"
  echo "volume=$short"
done >>"$work/manifest.txt"
# The helper wrote as root: the checksums and the archive are made by this user.
(cd "$work" && sha256sum manifest.txt volumes/*.tar.gz >SHA256SUMS)

archive="$dir/homelab-$project-$stamp.tar"
tar -C "$work" -cf "$archive" manifest.txt SHA256SUMS volumes
if ((encrypt)); then
  age -r "$recipient" -o "$archive.age" "$archive"
  rm -f "$archive"
  archive="$archive.age"
fi
(cd "$(dirname "$archive")" && sha256sum "$(basename "$archive")" >"$(basename "$archive").sha256")

# Retention: the newest --keep of this project (names sort by time), never the new one.
mapfile -t archives < <(find "$dir" -maxdepth 1 -name "homelab-$project-*.tar*" ! -name '*.sha256' | sort -r)
for old in "${archives[@]:$keep}"; do
  [[ "$old" == "$archive" ]] && continue
  rm -f "$old" "$old.sha256"
  echo "removed old backup $old"
done
echo "backup: $archive ($(du -h "$archive" | cut -f1), ${#volumes[@]} volumes of project $project)"
