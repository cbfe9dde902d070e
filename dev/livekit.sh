#!/usr/bin/env bash
# The dev/test LiveKit server on 127.0.0.1, built from source with `go install`, and the private
# Redis it keeps SIP trunks in (Debian's redis-server).
#   dev/livekit.sh install | start | stop | status
# Set LIVEKIT_URL to use another server (LiveKit Cloud, ...) instead: start then does nothing.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# The one pin. Releases from v1.12 on have replace directives in go.mod, which `go install pkg@version`
# refuses: v1.11.0 is the newest that builds this way.
LIVEKIT_VERSION=v1.11.0
LK_PORT="${DEV_LIVEKIT_PORT:-7880}"
LK_RTC_TCP_PORT=$((LK_PORT + 1))
LK_RTC_UDP_PORT=$((LK_PORT + 2))
REDIS_PORT="${DEV_REDIS_PORT:-6390}"
BUILD="$CACHE/livekit-$LIVEKIT_VERSION"
SERVER="$BUILD/bin/server"
CONFIG="$ROOT/dev/livekit/livekit.yaml"
DIR="$STATE/livekit"
PIDFILE="$DIR/livekit.pid"
LOG="$DIR/server.log"
REDIS_PIDFILE="$DIR/redis.pid"
REDIS_LOG="$DIR/redis.log"
mkdir -p "$DIR"

install_redis() {
  if command -v redis-server >/dev/null; then
    ok "Redis $(redis-server --version | sed -n 's/.* v=\([^ ]*\).*/\1/p') installed ($(command -v redis-server))"
    return
  fi
  apt_ensure redis-server Redis "$DIR/apt.log"
  command -v redis-server >/dev/null || die "apt-get installed redis-server but there is no redis-server command"
  ok "Redis $(redis-server --version | sed -n 's/.* v=\([^ ]*\).*/\1/p') installed"
}

install_livekit() {
  local start pid elapsed next=15 built
  if [ -x "$SERVER" ]; then ok "LiveKit $LIVEKIT_VERSION server cached in $SERVER"; return; fi
  command -v go >/dev/null || die "Go is needed to build LiveKit (https://go.dev/dl/, 1.25 or newer)"
  step "Building LiveKit server $LIVEKIT_VERSION with $(go version | awk '{print $3}') (first time only: a few minutes)"
  mkdir -p "$BUILD"
  start=$(date +%s)
  # -v names each package as it compiles; the log keeps them, a heartbeat shows progress.
  (close_inherited_fds; GOBIN="$BUILD/bin" GOFLAGS=-buildvcs=false \
    exec go install -v "github.com/livekit/livekit-server/cmd/server@$LIVEKIT_VERSION") >"$BUILD/build.log" 2>&1 &
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    sleep 1
    elapsed=$(($(date +%s) - start))
    if ((elapsed >= next)); then
      built=$(grep -vc '^go: ' "$BUILD/build.log" || true)
      printf '    still building LiveKit (%ss: %s modules downloaded, %s packages compiled)\n' \
        "$elapsed" "$(grep -c '^go: downloading' "$BUILD/build.log" || true)" "$built" >&2
      next=$((next + 15))
    fi
  done
  if ! wait "$pid" || [ ! -x "$SERVER" ]; then
    tail -n 30 "$BUILD/build.log" >&2
    rm -f "$SERVER"
    die "go install of LiveKit $LIVEKIT_VERSION failed (log: $BUILD/build.log)"
  fi
  elapsed=$(($(date +%s) - start))
  echo "$elapsed" >"$BUILD/build-seconds"
  ok "LiveKit $LIVEKIT_VERSION built in ${elapsed}s: $SERVER ($(du -m "$SERVER" | cut -f1) MB)"
}

install() {
  install_redis
  install_livekit
}

# http_ok URL: the URL answers 200.
http_ok() { [ "$(curl -s -o /dev/null -m 2 -w '%{http_code}' "$1" 2>/dev/null)" = 200 ]; }

start_redis() {
  if pid_alive "$REDIS_PIDFILE"; then ok "Redis already running (pid $(cat "$REDIS_PIDFILE")) on 127.0.0.1:$REDIS_PORT"; return; fi
  if port_open 127.0.0.1 "$REDIS_PORT"; then die "port $REDIS_PORT is taken by another process (set DEV_REDIS_PORT)"; fi
  step "Starting Redis for LiveKit on 127.0.0.1:$REDIS_PORT (in memory only)"
  : >"$REDIS_LOG"
  daemonize "$REDIS_LOG" redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$DIR" \
    --save "" --appendonly no --daemonize no >"$REDIS_PIDFILE"
  wait_port 127.0.0.1 "$REDIS_PORT" 30 Redis "$REDIS_LOG"
}

start() {
  local i t0 p
  if [ -n "${LIVEKIT_URL:-}" ]; then ok "using LiveKit at $LIVEKIT_URL: dev server not started"; return; fi
  t0=$(date +%s)
  install
  start_redis
  if pid_alive "$PIDFILE"; then ok "LiveKit already running (pid $(cat "$PIDFILE")) on http://127.0.0.1:$LK_PORT"; return; fi
  for p in "$LK_PORT" "$LK_RTC_TCP_PORT"; do
    if port_open 127.0.0.1 "$p"; then die "port $p is taken by another process (set DEV_LIVEKIT_PORT)"; fi
  done
  step "Starting LiveKit $LIVEKIT_VERSION on http://127.0.0.1:$LK_PORT (rtc tcp $LK_RTC_TCP_PORT, udp $LK_RTC_UDP_PORT; keys devkey/secret)"
  : >"$LOG"
  # The server reads every LIVEKIT_* variable as a setting: only the config file and the flags count.
  (for v in $(compgen -e | grep '^LIVEKIT_' || true); do unset "$v"; done
   cd "$DIR" && daemonize "$LOG" "$SERVER" --config "$CONFIG" --bind 127.0.0.1 --port "$LK_PORT" \
     --rtc.tcp_port "$LK_RTC_TCP_PORT" --udp-port "$LK_RTC_UDP_PORT" --redis-host "127.0.0.1:$REDIS_PORT" \
     >"$PIDFILE")
  for ((i = 0; i < 300; i++)); do
    if http_ok "http://127.0.0.1:$LK_PORT/"; then
      ok "LiveKit is ready on http://127.0.0.1:$LK_PORT ($(($(date +%s) - t0))s; log $LOG)"
      return 0
    fi
    pid_alive "$PIDFILE" || { tail -n 30 "$LOG" >&2; die "LiveKit exited (log: $LOG)"; }
    ((i % 25 == 24)) && printf '    still waiting for LiveKit (%ss)\n' $((i / 5 + 1)) >&2
    sleep 0.2
  done
  tail -n 30 "$LOG" >&2
  die "LiveKit did not answer on http://127.0.0.1:$LK_PORT/ within 60s (log: $LOG)"
}

stop() {
  if pid_alive "$PIDFILE"; then stop_pid "$PIDFILE" LiveKit; else rm -f "$PIDFILE"; ok "LiveKit not running"; fi
  if pid_alive "$REDIS_PIDFILE"; then stop_pid "$REDIS_PIDFILE" Redis; else rm -f "$REDIS_PIDFILE"; ok "Redis not running"; fi
}

status() {
  local rc=0
  [ -n "${LIVEKIT_URL:-}" ] && echo "LiveKit: using $LIVEKIT_URL (LIVEKIT_URL)"
  if pid_alive "$PIDFILE"; then echo "LiveKit running, pid $(cat "$PIDFILE"), http://127.0.0.1:$LK_PORT"; else echo "LiveKit stopped"; rc=1; fi
  if pid_alive "$REDIS_PIDFILE"; then echo "Redis (LiveKit) running, pid $(cat "$REDIS_PIDFILE"), 127.0.0.1:$REDIS_PORT"; else echo "Redis (LiveKit) stopped"; rc=1; fi
  return $rc
}

case "${1:-}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 install|start|stop|status" >&2; exit 2 ;;
esac
