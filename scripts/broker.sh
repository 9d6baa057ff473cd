# The MQTT broker of the demo and of the tests, in one place: mosquitto 2.x on 127.0.0.1 with
# mutual TLS against an XBoot CA directory (as `xbootctl ca init` makes it) and an ACL that
# lets each device publish only under devices/<its ID>/. Source this file, then
#
#   xb_broker_start DIR CA_DIR [LOG_TYPES]
#
# writes DIR/acl and DIR/mosquitto.conf, starts mosquitto (log in DIR/mosquitto.log) and sets
# XB_BROKER_PORT and XB_BROKER_PID; it returns 1 after showing the log if mosquitto cannot
# start. LOG_TYPES: mosquitto log_type values (default "error warning notice information").
# The caller stops XB_BROKER_PID.

xb_broker_free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

xb_broker_write_config() { # DIR CA_DIR PORT LOG_TYPES
  local dir=$1 ca=$2 port=$3 t
  cat >"$dir/acl" <<'ACL'
# Each device publishes only under its own ID (%u: the username, i.e. the certificate's CN).
pattern write devices/%u/#
# The monitor reads every device's telemetry.
user xboot-monitor
topic read devices/#
ACL
  {
    echo "# Run as whoever starts it (as root, mosquitto would switch to a \"mosquitto\" user that"
    echo "# cannot read the 0600 TLS key)."
    echo "user $(id -un)"
    echo "per_listener_settings false"
    echo "persistence false"
    echo "log_dest stderr"
    for t in $4; do echo "log_type $t"; done
    echo "listener $port 127.0.0.1"
    echo "# Mutual TLS: the client certificate must chain to our CA; its CN becomes the username."
    echo "cafile $ca/chain.pem"
    echo "certfile $ca/tls.pem"
    echo "keyfile $ca/tls.key"
    echo "tls_version tlsv1.2"
    echo "require_certificate true"
    echo "use_identity_as_username true"
    echo "allow_anonymous false"
    echo "acl_file $dir/acl"
  } >"$dir/mosquitto.conf"
}

xb_broker_start() {
  local dir=$1 ca=$2 logs=${3:-error warning notice information} attempt i
  mkdir -p "$dir"
  XB_BROKER_PID="" XB_BROKER_PORT=""
  # mosquitto cannot bind port 0: take a port the kernel just handed out, retry if it is lost.
  for attempt in 1 2 3 4 5; do
    XB_BROKER_PORT=$(xb_broker_free_port)
    xb_broker_write_config "$dir" "$ca" "$XB_BROKER_PORT" "$logs"
    mosquitto -c "$dir/mosquitto.conf" 2>"$dir/mosquitto.log" &
    XB_BROKER_PID=$!
    for i in $(seq 1 50); do # at most 5 s
      grep -q "mosquitto version .* running" "$dir/mosquitto.log" && return 0
      kill -0 "$XB_BROKER_PID" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$XB_BROKER_PID" 2>/dev/null
    wait "$XB_BROKER_PID" 2>/dev/null
    XB_BROKER_PID=""
  done
  echo "mosquitto did not start:"
  cat "$dir/mosquitto.log"
  return 1
}
