#!/bin/sh
# Writes the broker's password file from .env at every start (so a password changed in
# .env reaches the broker and the services together), then runs mosquitto.
# POSIX sh: the eclipse-mosquitto image is Alpine. MOSQUITTO_DIR exists for tests.
set -eu

dir="${MOSQUITTO_DIR:-/mosquitto}"
passwd_file="$dir/data/passwd"
if [ -z "${MQTT_USERNAME:-}" ] || [ -z "${MQTT_PASSWORD:-}" ]; then
  echo "mqtt: MQTT_USERNAME and MQTT_PASSWORD must be set in .env (no anonymous access)" >&2
  exit 1
fi
mkdir -p "$dir/data"
rm -f "$passwd_file.new"
mosquitto_passwd -b -c "$passwd_file.new" "$MQTT_USERNAME" "$MQTT_PASSWORD" >/dev/null
if id mosquitto >/dev/null 2>&1; then
  chown mosquitto:mosquitto "$passwd_file.new" 2>/dev/null || true
fi
chmod 0600 "$passwd_file.new"
mv "$passwd_file.new" "$passwd_file"
echo "mqtt: password file written for user $MQTT_USERNAME"
exec mosquitto -c "${MOSQUITTO_CONFIG:-$dir/config/mosquitto.conf}"
