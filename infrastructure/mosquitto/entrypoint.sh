#!/bin/sh
# Writes the broker's password and ACL files from .env at every start (so a password
# changed in .env reaches the broker and the services together), then runs mosquitto.
#   MQTT_USERNAME / MQTT_PASSWORD        the admin account: every topic (tools, healthcheck)
#   MQTT_PASSWORD_<IDENTITY>             one account per service or client, named after
#                                        <IDENTITY> in lower case with '-' for '_'
#                                        (MQTT_PASSWORD_SMART_EV_CHARGING → smart-ev-charging)
# An identity publishes only under homelab/<identity>/, its dead-letter topic and its own
# HA discovery node, and reads homelab/#. Only homeassistant, dashboard and orchestrator
# may publish to the services' command topics (homelab/+/entity/+/set) and decide on
# health-monitor's proposed actions (homelab/health-monitor/actions/<id>/approve|reject).
# POSIX sh: the eclipse-mosquitto image is Alpine. MOSQUITTO_DIR exists for tests.
set -eu

dir="${MOSQUITTO_DIR:-/mosquitto}"
passwd_file="$dir/data/passwd"
acl_file="$dir/data/acl"
if [ -z "${MQTT_USERNAME:-}" ] || [ -z "${MQTT_PASSWORD:-}" ]; then
  echo "mqtt: MQTT_USERNAME and MQTT_PASSWORD must be set in .env (no anonymous access)" >&2
  exit 1
fi
mkdir -p "$dir/data"
rm -f "$passwd_file.new" "$acl_file.new"
mosquitto_passwd -b -c "$passwd_file.new" "$MQTT_USERNAME" "$MQTT_PASSWORD" >/dev/null
cat >"$acl_file.new" <<ACL
# Written by entrypoint.sh at every start from .env; change .env, not this file.
user $MQTT_USERNAME
topic readwrite #
topic read \$SYS/#
ACL

identities=""
for variable in $(env | sed -n 's/^\(MQTT_PASSWORD_[A-Z0-9_]*\)=.*/\1/p' | sort); do
  password="$(printenv "$variable")"
  [ -n "$password" ] || continue
  suffix="${variable#MQTT_PASSWORD_}"
  identity="$(echo "$suffix" | tr '[:upper:]' '[:lower:]' | tr '_' '-')"
  node="homelab_$(echo "$suffix" | tr '[:upper:]' '[:lower:]')"
  if [ "$identity" = "$MQTT_USERNAME" ]; then
    echo "mqtt: $variable names the admin account $MQTT_USERNAME; pick another MQTT_USERNAME" >&2
    exit 1
  fi
  mosquitto_passwd -b "$passwd_file.new" "$identity" "$password" >/dev/null
  {
    echo
    echo "user $identity"
    echo "topic readwrite homelab/$identity/#"
    echo "topic write homelab/errors/$identity"
    echo "topic readwrite homeassistant/+/$node/#"
    echo "topic read homelab/#"
    echo "topic read homeassistant/status"
    case "$identity" in
      homeassistant)
        echo "topic readwrite homeassistant/#"
        echo "topic write homelab/+/entity/+/set"
        echo "topic write homelab/health-monitor/actions/+/+"
        ;;
      dashboard | orchestrator)
        echo "topic write homelab/+/entity/+/set"
        echo "topic write homelab/health-monitor/actions/+/+"
        ;;
    esac
  } >>"$acl_file.new"
  identities="$identities $identity"
done

for file in "$passwd_file.new" "$acl_file.new"; do
  if id mosquitto >/dev/null 2>&1; then
    chown mosquitto:mosquitto "$file" 2>/dev/null || true
  fi
  chmod 0600 "$file"
done
mv "$passwd_file.new" "$passwd_file"
mv "$acl_file.new" "$acl_file"
echo "mqtt: password file written for user $MQTT_USERNAME${identities:+ and$identities}"
exec mosquitto -c "${MOSQUITTO_CONFIG:-$dir/config/mosquitto.conf}"
