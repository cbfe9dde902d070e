# Shared helpers of the dev scripts: paths, progress lines, waiting for a port.
# shellcheck shell=bash
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# Downloads and builds live outside the work tree so that a fresh clone reuses them.
CACHE="${SIP_DEV_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/sip-trunks}"
# Runtime state (data, logs, pids) of the local stack lives in an ignored folder of the checkout.
STATE="${SIP_DEV_STATE:-$ROOT/.dev}"
mkdir -p "$CACHE" "$STATE"

step() { printf '\033[1;34m==>\033[0m %s\n' "$*" >&2; }
ok() { printf '\033[1;32m  ✓\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31m  ✗\033[0m %s\n' "$*" >&2; exit 1; }

port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

# poll SECONDS WHAT CMD...: run CMD every 0.2 s until it succeeds (status 0) or SECONDS have
# passed (status 1); unless WHAT is empty, a "still waiting for WHAT" line every 5 s.
poll() {
  local limit=$1 what=$2 i
  shift 2
  for ((i = 0; i < limit * 5; i++)); do
    "$@" && return 0
    [ -n "$what" ] && ((i % 25 == 24)) && printf '    still waiting for %s (%ss)\n' "$what" $((i / 5 + 1)) >&2
    sleep 0.2
  done
  return 1
}

# wait_port HOST PORT SECONDS WHAT LOGFILE
wait_port() {
  local host=$1 port=$2 limit=$3 what=$4 log=${5:-}
  poll "$limit" "$what" port_open "$host" "$port" && { ok "$what is accepting connections on $host:$port"; return 0; }
  [ -n "$log" ] && tail -n 30 "$log" >&2
  die "$what did not open $host:$port within ${limit}s"
}

pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

pid_gone() { ! kill -0 "$1" 2>/dev/null; }

# reap PID SECONDS: wait for PID (sent TERM) to exit; KILL it after SECONDS.
reap() {
  poll "$2" "" pid_gone "$1" || kill -9 "$1" 2>/dev/null || true
}

# stop_pid PIDFILE WHAT: TERM, then KILL after 20 s.
stop_pid() {
  local pidfile=$1 what=$2 pid
  pid_alive "$pidfile" || { rm -f "$pidfile"; return 0; }
  pid=$(cat "$pidfile")
  kill "$pid" 2>/dev/null || true
  reap "$pid" 20
  rm -f "$pidfile"
  ok "$what stopped"
}

# Close every file descriptor above 2 in this (sub)shell: a server started from here must not
# hold a pipe of whoever runs us (CI reading our output would wait for it forever).
close_inherited_fds() {
  local fd
  for fd in /proc/$BASHPID/fd/*; do
    fd=${fd##*/}
    [ "$fd" -gt 2 ] && eval "exec $fd>&-"
  done
  return 0
}

# daemonize LOGFILE CMD...: run CMD detached (own session, output to LOGFILE); print its pid.
daemonize() {
  local log=$1
  shift
  (close_inherited_fds; exec setsid "$@" </dev/null >>"$log" 2>&1) &
  echo $!
}

# apt_ensure PACKAGE WHAT LOGFILE: install a Debian package. The package lists are refreshed only
# when apt knows no candidate (a fresh machine) or when the install fails with the lists it has
# (a superseded .deb gone from the mirror); the lock is waited for, the output kept in LOGFILE.
apt_ensure() {
  local package=$1 what=$2 log=$3 policy
  mkdir -p "$(dirname "$log")"
  policy=$(apt-cache policy "$package" 2>/dev/null) || true
  [[ $policy == *"Candidate: "[0-9]* ]] || _apt_update "$log"
  step "Installing $what from Debian's packages (apt-get install $package, first time only)"
  if ! _apt_install "$package" "$log"; then
    step "apt-get install failed with the current package lists: refreshing them and trying once more"
    _apt_update "$log"
    _apt_install "$package" "$log" || { tail -n 30 "$log" >&2; die "apt-get install $package failed (log: $log)"; }
  fi
}

_apt_install() {
  DEBIAN_FRONTEND=noninteractive apt-get -q -y -o DPkg::Lock::Timeout=300 \
    install --no-install-recommends "$1" >"$2" 2>&1
}

_apt_update() {
  step "Refreshing Debian's package lists (apt-get update)"
  DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=300 update >"$1" 2>&1 ||
    { tail -n 30 "$1" >&2; die "apt-get update failed"; }
  ok "package lists refreshed"
}

# kraft_properties NODE_ID VOTERS LOG_DIR REPLICAS MIN_ISR: the server.properties of one KRaft
# node (broker and controller) but its listeners, which the caller appends (plaintext_listeners,
# or dev/kafka.sh's SASL ones); the single dev broker and the fault suite's cluster differ only
# in these.
kraft_properties() {
  cat <<PROPS
process.roles=broker,controller
node.id=$1
controller.quorum.voters=$2
controller.listener.names=CONTROLLER
log.dirs=$3
num.partitions=3
default.replication.factor=$4
min.insync.replicas=$5
offsets.topic.replication.factor=$4
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=$4
transaction.state.log.min.isr=$5
share.coordinator.state.topic.replication.factor=$4
share.coordinator.state.topic.min.isr=$5
group.initial.rebalance.delay.ms=0
# Topics are created by the project (service/adapters/kafka_topics.py), never by accident.
auto.create.topics.enable=false
log.cleaner.backoff.ms=1000
PROPS
}

# plaintext_listeners PORT CONTROLLER_PORT: no authentication, no TLS, on loopback.
plaintext_listeners() {
  cat <<PROPS
listeners=PLAINTEXT://127.0.0.1:$1,CONTROLLER://127.0.0.1:$2
advertised.listeners=PLAINTEXT://127.0.0.1:$1
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
PROPS
}
