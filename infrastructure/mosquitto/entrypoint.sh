#!/bin/sh
# Creates the broker's password file from .env on first start, then runs mosquitto.
# POSIX sh: the eclipse-mosquitto image is Alpine. MOSQUITTO_DIR exists for tests.
set -eu

dir="${MOSQUITTO_DIR:-/mosquitto}"
passwd_file="$dir/data/passwd"
if [ ! -s "$passwd_file" ]; then
  if [ -z "${MQTT_USERNAME:-}" ] || [ -z "${MQTT_PASSWORD:-}" ]; then
    echo "mqtt: MQTT_USERNAME and MQTT_PASSWORD must be set in .env (no anonymous access)" >&2
    exit 1
  fi
  mkdir -p "$dir/data"
  mosquitto_passwd -b -c "$passwd_file" "$MQTT_USERNAME" "$MQTT_PASSWORD"
  if id mosquitto >/dev/null 2>&1; then
    chown mosquitto:mosquitto "$passwd_file" 2>/dev/null || true
  fi
  chmod 0600 "$passwd_file"
  echo "mqtt: created password file for user $MQTT_USERNAME"
fi
exec mosquitto -c "${MOSQUITTO_CONFIG:-$dir/config/mosquitto.conf}"
