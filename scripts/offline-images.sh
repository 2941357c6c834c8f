#!/usr/bin/env bash
# Builds local stand-ins for the three public images our Dockerfiles and Compose file
# name, for a Docker engine that cannot pull (no registry reachable). They carry exactly
# those names, so the Dockerfiles stay what a user with internet builds:
#   rust:<version>-slim-bookworm           Debian bookworm + gcc + this machine's Rust toolchain
#                                          and CA certificates
#   gcr.io/distroless/cc-debian12:nonroot  libc, libgcc, CA certificates, tzdata, user nonroot (65532)
#   eclipse-mosquitto:2                    Debian's mosquitto and its clients, /mosquitto layout, uid 1883
# Everything comes from Debian's packages (debootstrap) and the local rustup toolchain.
# Root file systems are cached in ~/.cache/homelab/images; an image that is already a
# stand-in of this script's version is kept, and a real (pulled) image is never replaced.
set -euo pipefail

usage() {
  cat <<'USAGE'
usage: scripts/offline-images.sh [--force]
Builds the stand-in base images (see the head of this script) with debootstrap and
docker import. Needs root (debootstrap), a Docker engine and Debian's mirror.
  --force   rebuild the stand-ins even when current ones exist
USAGE
}
force=0
case "${1:-}" in
  -h|--help) usage; exit 0 ;;
  --force) force=1 ;;
  "") ;;
  *) usage >&2; exit 2 ;;
esac
cd "$(dirname "$0")/.."

fail() { echo "offline-images.sh: $*" >&2; exit 1; }
docker info >/dev/null 2>&1 || fail "no Docker engine reachable (docker info failed)"
[[ "$(id -u)" -eq 0 ]] || fail "debootstrap needs root; run it with sudo"
# shellcheck source=scripts/lib/apt.sh
source scripts/lib/apt.sh
command -v debootstrap >/dev/null 2>&1 || apt_install debootstrap

# The names exactly as the Dockerfiles write them.
rust_image="$(awk '/^FROM rust:/ { print $2; exit }' base/Dockerfile)"
runtime_image="$(awk '/^FROM gcr.io\/distroless\// { print $2; exit }' Dockerfile)"
broker_image="$(awk '/image: eclipse-mosquitto:/ { print $2; exit }' docker-compose.yml)"
[[ -n "$rust_image" && -n "$runtime_image" && -n "$broker_image" ]] \
  || fail "cannot read the image names from base/Dockerfile, Dockerfile and docker-compose.yml"

# The stand-in toolchain must be the version the tag promises.
wanted_rust="${rust_image#rust:}"
wanted_rust="${wanted_rust%-slim-bookworm}"
sysroot="$(rustc --print sysroot)"
have_rust="$(rustc --version | awk '{ print $2 }')"
[[ "$have_rust" == "$wanted_rust" || "$have_rust" == "$wanted_rust".* ]] \
  || fail "$rust_image needs Rust $wanted_rust, this machine has $have_rust"

mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
cache="${HOMELAB_IMAGE_CACHE:-$HOME/.cache/homelab/images}"
mkdir -p "$cache"
stamp="$(sha256sum <"$0" | cut -c1-16)-$have_rust"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# current IMAGE → 0 when IMAGE is a stand-in of this version (or a real image: kept)
current() {
  local label
  docker image inspect "$1" >/dev/null 2>&1 || return 1
  label="$(docker image inspect -f '{{ index .Config.Labels "org.homelab.stand-in" }}' "$1")"
  if [[ -z "$label" || "$label" == "<no value>" ]]; then
    echo "$1: a real image is present; keeping it"
    return 0
  fi
  [[ "$force" -eq 0 && "$label" == "$stamp" ]]
}

# rootfs NAME PACKAGES → a directory with a bookworm minbase and PACKAGES (cached as a tar)
rootfs() {
  local name="$1" packages="$2" dir="$work/$1" tar
  tar="$cache/bookworm-$name-$(sha256sum <<<"$packages" | cut -c1-8).tar"
  mkdir -p "$dir"
  if [[ ! -s "$tar" || "$force" -eq 1 ]]; then
    echo "debootstrap bookworm ($name: $packages)" >&2
    debootstrap --variant=minbase --include="$packages" bookworm "$dir" "$mirror" >"$work/$name.log" 2>&1 \
      || { tail -20 "$work/$name.log" >&2; fail "debootstrap of $name failed"; }
    chroot "$dir" apt-get clean
    rm -rf "$dir"/var/lib/apt/lists/* "$dir"/usr/share/doc/* "$dir"/usr/share/man/* "$dir"/usr/share/info/*
    tar -C "$dir" -cf "$tar.tmp" . && mv "$tar.tmp" "$tar"
  else
    tar -C "$dir" -xf "$tar"
  fi
  echo "$dir"
}

# import DIR IMAGE [--change …]… → the image, labelled with this version
import() {
  local dir="$1" image="$2"
  shift 2
  tar -C "$dir" -c . | docker import --change "LABEL org.homelab.stand-in=$stamp" "$@" - "$image" >/dev/null
  docker image prune --force --filter label=org.homelab.stand-in >/dev/null # the one it replaced
  echo "built stand-in $image ($(docker image inspect -f '{{ .Size }}' "$image" | awk '{ printf "%.0f MB", $1 / 1e6 }'))"
}

build_rust() {
  local dir toolchain
  dir="$(rootfs builder ca-certificates,gcc,libc6-dev)"
  # Builds download crates: trust what this machine trusts (its network may inspect TLS).
  cp /etc/ssl/certs/ca-certificates.crt "$dir/etc/ssl/certs/ca-certificates.crt"
  # As the official image: rustup's layout under /usr/local, cargo on PATH.
  toolchain="$dir/usr/local/rustup/toolchains/$have_rust-x86_64-unknown-linux-gnu"
  mkdir -p "$toolchain" "$dir/usr/local/cargo/bin"
  tar -C "$sysroot" --exclude=./share/doc --exclude=./share/man -c . | tar -C "$toolchain" -x
  for tool in cargo rustc rustdoc; do
    ln -s "../../rustup/toolchains/$have_rust-x86_64-unknown-linux-gnu/bin/$tool" "$dir/usr/local/cargo/bin/$tool"
  done
  import "$dir" "$rust_image" \
    --change "ENV RUSTUP_HOME=/usr/local/rustup" \
    --change "ENV CARGO_HOME=/usr/local/cargo" \
    --change "ENV RUST_VERSION=$have_rust" \
    --change "ENV PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
    --change "CMD [\"bash\"]"
}

build_runtime() {
  local dir out package list
  dir="$(rootfs runtime ca-certificates,tzdata,netbase)"
  out="$work/distroless"
  mkdir -p "$out"/{etc/ssl/certs,tmp,home/nonroot,root,usr}
  # Debian's merged /usr: /lib, /lib64, /bin, /sbin are links into /usr.
  for link in bin lib lib64 sbin; do
    [[ -L "$dir/$link" ]] || continue
    cp -a "$dir/$link" "$out/$link"
    mkdir -p "$out/usr/$link"
  done
  # Only the files of these packages: no shell, no package manager.
  for package in libc6 libgcc-s1 tzdata base-files netbase; do
    list="$dir/var/lib/dpkg/info/$package:amd64.list"
    [[ -f "$list" ]] || list="$dir/var/lib/dpkg/info/$package.list"
    [[ -f "$list" ]] || fail "package $package is missing in the runtime root file system"
    grep -v -E '^/usr/share/(doc|man|info|lintian|bug)|^/usr/bin|^/bin|^/sbin|^/usr/sbin' "$list" \
      | while IFS= read -r path; do
        [[ -d "$dir$path" && ! -L "$dir$path" ]] && continue
        [[ -e "$dir$path" || -L "$dir$path" ]] || continue
        printf '%s\0' ".$path"
      done | tar -C "$dir" --null --no-recursion -T - -c | tar -C "$out" -x
  done
  cp "$dir/etc/ssl/certs/ca-certificates.crt" "$out/etc/ssl/certs/"
  printf '%s\n' 'root:x:0:0:root:/root:/sbin/nologin' 'nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin' \
    'nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin' >"$out/etc/passwd"
  printf '%s\n' 'root:x:0:' 'nobody:x:65534:' 'tty:x:5:' 'staff:x:50:' 'nonroot:x:65532:' >"$out/etc/group"
  printf '%s\n' 'hosts: files dns' >"$out/etc/nsswitch.conf"
  chmod 1777 "$out/tmp"
  chmod 700 "$out/root" "$out/home/nonroot"
  chown 65532:65532 "$out/home/nonroot"
  import "$out" "$runtime_image" \
    --change "USER 65532" \
    --change "WORKDIR /home/nonroot" \
    --change "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
    --change "ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"
}

build_broker() {
  local dir
  dir="$(rootfs broker mosquitto,mosquitto-clients)"
  # The official image's layout and user: mosquitto (uid/gid 1883) owns /mosquitto.
  chroot "$dir" groupmod -g 1883 mosquitto
  chroot "$dir" usermod -u 1883 -g 1883 mosquitto
  mkdir -p "$dir"/mosquitto/{config,data,log}
  printf '%s\n' 'listener 1883' 'allow_anonymous false' >"$dir/mosquitto/config/mosquitto.conf"
  chroot "$dir" chown -R mosquitto:mosquitto /mosquitto
  import "$dir" "$broker_image" \
    --change "EXPOSE 1883" \
    --change "VOLUME [\"/mosquitto/data\", \"/mosquitto/log\"]" \
    --change "CMD [\"/usr/sbin/mosquitto\", \"-c\", \"/mosquitto/config/mosquitto.conf\"]"
}

current "$rust_image" || build_rust
current "$runtime_image" || build_runtime
current "$broker_image" || build_broker
