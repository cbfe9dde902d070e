#!/usr/bin/env bash
# The local service processes (worker, relay) in the background, logs and pids under .dev/.
#   dev/stack.sh up | down | status
# Kafka and LiveKit must be up (dev/kafka.sh start, dev/livekit.sh start). Settings come from the environment (see README).
# On the dev broker each process is its own Kafka user (env/<user>.env of dev/kafka.sh); the
# set-up (topics, ACLs) runs as `admin`. Another cluster (KAFKA_BOOTSTRAP_SERVERS): the
# environment's settings for every process, and its ACLs are the operator's (sip-trunks acls).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RUN="$STATE/run"
LOGS="$STATE/logs"
CLI="$ROOT/.venv/bin/sip-trunks"
PROCESSES=(worker relay gateway)
mkdir -p "$RUN" "$LOGS"

export SYSTEM_TRUNKS_FILE="${SYSTEM_TRUNKS_FILE-$ROOT/dev/system-trunks.yaml}"
export LOG_FORMAT="${LOG_FORMAT:-json}"
# The API's description (/docs, /redoc, /openapi.json) is served in dev; off unless set elsewhere.
export GATEWAY_API_DOCS="${GATEWAY_API_DOCS:-true}"
# The production posture: only the gateway and the CLI (they sign, docs/security.md) act.
export REQUIRE_SIGNED_COMMANDS="${REQUIRE_SIGNED_COMMANDS:-true}"
# LiveKit: the dev server of dev/livekit.sh unless LIVEKIT_URL names another (then set the key and secret too).
export PROVIDER="${PROVIDER:-livekit}"
export LIVEKIT_URL="${LIVEKIT_URL:-http://127.0.0.1:${DEV_LIVEKIT_PORT:-7880}}"
export LIVEKIT_API_KEY="${LIVEKIT_API_KEY:-devkey}"
export LIVEKIT_API_SECRET="${LIVEKIT_API_SECRET:-secret}"

KAFKA="$ROOT/dev/kafka.sh"

# wait_log FILE PATTERN SECONDS WHAT
wait_log() {
  poll "$3" "" grep -qs "$2" "$1" && { ok "$4"; return 0; }
  tail -n 30 "$1" >&2
  die "$4: not ready after $3 s (log: $1)"
}

# http_200 URL: URL answers 200.
http_200() {
  "$ROOT/.venv/bin/python" - "$1" <<'PY'
import sys, urllib.request
try:
    sys.exit(0 if urllib.request.urlopen(sys.argv[1], timeout=1).status == 200 else 1)
except Exception:
    sys.exit(1)
PY
}

# wait_ready URL SECONDS WHAT: until URL answers 200 (the gateway's read model has caught up).
wait_ready() {
  poll "$2" "" http_200 "$1" && { ok "$3 is ready at ${1%/readyz}"; return 0; }
  tail -n 30 "$LOGS/gateway.log" >&2
  die "$3: not ready after $2 s (log: $LOGS/gateway.log)"
}

up() {
  step "Applying database migrations and creating Kafka topics"
  (cd "$ROOT" && "$CLI" migrate && "$KAFKA" as admin "$CLI" topics) >&2
  if "$KAFKA" secured; then
    step "Granting each Kafka user its ACLs (sip-trunks acls, as admin)"
    (cd "$ROOT" && "$KAFKA" as admin "$CLI" acls) >"$LOGS/acls.log" || { cat "$LOGS/acls.log" >&2; die "sip-trunks acls failed"; }
    ok "$(wc -l <"$LOGS/acls.log") ACLs granted (list: $LOGS/acls.log)"
  fi
  for name in "${PROCESSES[@]}"; do
    if pid_alive "$RUN/$name.pid"; then ok "$name already running (pid $(cat "$RUN/$name.pid"))"; continue; fi
    : >"$LOGS/$name.log"
    (cd "$ROOT" && daemonize "$LOGS/$name.log" "$KAFKA" as "$name" "$CLI" "$name" >"$RUN/$name.pid")
    step "Started $name (pid $(cat "$RUN/$name.pid"), log $LOGS/$name.log$("$KAFKA" secured && echo ", Kafka user $name"))"
  done
  wait_log "$LOGS/worker.log" '"worker.started"' 60 "worker is consuming commands"
  wait_log "$LOGS/relay.log" '"relay.started"' 30 "relay is publishing the outbox"
  wait_ready "http://${GATEWAY_HOST:-127.0.0.1}:${GATEWAY_PORT:-8080}/readyz" 60 "REST gateway"
}

down() {
  local name
  for name in "${PROCESSES[@]}"; do stop_pid "$RUN/$name.pid" "$name"; done
}

status() {
  local name
  for name in "${PROCESSES[@]}"; do
    if pid_alive "$RUN/$name.pid"; then echo "$name running, pid $(cat "$RUN/$name.pid")"; else echo "$name stopped"; fi
  done
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
