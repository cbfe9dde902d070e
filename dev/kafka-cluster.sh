#!/usr/bin/env bash
# A 3-node Apache Kafka cluster (KRaft, each node broker and controller) on 127.0.0.1 for the
# fault tests, from the same Maven Central jars as dev/kafka.sh. Topics default to 3 replicas
# with min.insync.replicas=2: one node may be down without stopping producers (acks=all).
#   dev/kafka-cluster.sh start | stop | status | bootstrap | clean
#   dev/kafka-cluster.sh node-start N | node-stop N | node-kill N      (N = 1, 2 or 3)
# Ports: clients FAULTS_KAFKA_PORT (19092) + N - 1, controllers FAULTS_KAFKA_CONTROLLER_PORT
# (19192) + N - 1; the dev broker's 9092/9093 are left alone. State and logs: .dev/kafka-cluster/.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

NODES=(1 2 3)
BASE_PORT="${FAULTS_KAFKA_PORT:-19092}"
BASE_CONTROLLER_PORT="${FAULTS_KAFKA_CONTROLLER_PORT:-19192}"
DIR="$STATE/kafka-cluster"
JAVA="${JAVA_HOME:+$JAVA_HOME/bin/}java"
HEAP="${FAULTS_KAFKA_HEAP:-384m}"

port_of() { echo $((BASE_PORT + $1 - 1)); }
controller_port_of() { echo $((BASE_CONTROLLER_PORT + $1 - 1)); }
node_dir() { echo "$DIR/node$1"; }
pidfile() { echo "$DIR/node$1/kafka.pid"; }

bootstrap() {
  local n list=()
  for n in "${NODES[@]}"; do list+=("127.0.0.1:$(port_of "$n")"); done
  (IFS=,; echo "${list[*]}")
}

voters() {
  local n list=()
  for n in "${NODES[@]}"; do list+=("$n@127.0.0.1:$(controller_port_of "$n")"); done
  (IFS=,; echo "${list[*]}")
}

check_node() {
  [[ " ${NODES[*]} " == *" ${1:-} "* ]] || die "no node '${1:-}': use 1, 2 or 3"
}

libs() {
  [ -n "${LIBS:-}" ] || LIBS=$("$ROOT/dev/kafka.sh" libs) || die "the Kafka jars are not available"
}

write_config() {
  local n=$1 dir
  dir=$(node_dir "$n")
  mkdir -p "$dir/logs"
  {
    kraft_properties "$n" "$(voters)" "$dir/logs" 3 2
    # Plaintext: the fault suite tests failures, not access control (docs/security.md).
    plaintext_listeners "$(port_of "$n")" "$(controller_port_of "$n")"
    # A node that comes back catches up and rejoins the ISR quickly; a dead one leaves it soon.
    echo "replica.lag.time.max.ms=10000"
  } >"$dir/server.properties"
}

# All nodes share one cluster id, kept in the state folder; each node's storage is formatted once.
format_node() {
  local n=$1 dir id
  dir=$(node_dir "$n")
  [ -f "$dir/logs/meta.properties" ] && return 0
  if [ ! -f "$DIR/cluster.id" ]; then
    "$JAVA" -cp "$LIBS/*" kafka.tools.StorageTool random-uuid 2>/dev/null >"$DIR/cluster.id" ||
      die "could not make a cluster id"
  fi
  id=$(cat "$DIR/cluster.id")
  step "Formatting node $n's storage in $dir/logs (cluster $id)"
  "$JAVA" -cp "$LIBS/*" kafka.tools.StorageTool format -t "$id" -c "$dir/server.properties" \
    >"$dir/format.log" 2>&1 || { cat "$dir/format.log" >&2; die "format of node $n failed"; }
}

# launch_node N: start node N in the background (no waiting); nothing when it runs already.
launch_node() {
  local n=$1 dir port
  dir=$(node_dir "$n")
  port=$(port_of "$n")
  if pid_alive "$(pidfile "$n")"; then ok "node $n already running (pid $(cat "$(pidfile "$n")")) on 127.0.0.1:$port"; return 0; fi
  port_open 127.0.0.1 "$port" && die "port $port is taken by another process (set FAULTS_KAFKA_PORT)"
  write_config "$n"
  format_node "$n"
  : >"$dir/stdout.log"
  # C1 only: half the CPU to start (nodes restart under load on 2 cores); plenty for test traffic.
  daemonize "$dir/stdout.log" "$JAVA" "-Xms$HEAP" "-Xmx$HEAP" -XX:+UseG1GC -XX:TieredStopAtLevel=1 -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$ROOT/dev/kafka/log4j2.properties" -Dkafka.logfile="$dir/server.log" \
    -cp "$LIBS/*" kafka.Kafka "$dir/server.properties" >"$(pidfile "$n")"
  step "Started Kafka node $n (pid $(cat "$(pidfile "$n")"), 127.0.0.1:$port, log $dir/server.log)"
}

wait_node() {
  local n=$1
  wait_port 127.0.0.1 "$(port_of "$n")" 120 "Kafka node $n" "$(node_dir "$n")/stdout.log"
}

start() {
  local n
  libs
  mkdir -p "$DIR"
  step "Starting a 3-node Kafka cluster (KRaft, RF 3, min.insync.replicas=2) on $(bootstrap)"
  for n in "${NODES[@]}"; do launch_node "$n"; done
  for n in "${NODES[@]}"; do wait_node "$n"; done
  ok "cluster up: KAFKA_BOOTSTRAP_SERVERS=$(bootstrap)"
}

# TERM every node at once, then wait for each (KILL after 30 s): a clean shutdown in parallel.
stop() {
  local n pid pids=()
  for n in "${NODES[@]}"; do
    if pid_alive "$(pidfile "$n")"; then
      pid=$(cat "$(pidfile "$n")")
      kill "$pid" 2>/dev/null || true
      pids+=("$n:$pid")
    else
      rm -f "$(pidfile "$n")"
    fi
  done
  for entry in "${pids[@]}"; do
    n=${entry%%:*} pid=${entry#*:}
    reap "$pid" 30
    rm -f "$(pidfile "$n")"
    ok "Kafka node $n stopped"
  done
  [ ${#pids[@]} -gt 0 ] || ok "Kafka cluster not running"
}

node_start() {
  check_node "$1"
  libs
  launch_node "$1"
  wait_node "$1"
}

node_stop() {
  check_node "$1"
  stop_pid "$(pidfile "$1")" "Kafka node $1"
}

node_kill() {
  local pid
  check_node "$1"
  pid_alive "$(pidfile "$1")" || die "Kafka node $1 is not running"
  pid=$(cat "$(pidfile "$1")")
  kill -9 "$pid"
  while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
  rm -f "$(pidfile "$1")"
  ok "Kafka node $1 killed (SIGKILL, pid $pid)"
}

status() {
  local n up=0
  for n in "${NODES[@]}"; do
    if pid_alive "$(pidfile "$n")"; then
      echo "Kafka node $n running, pid $(cat "$(pidfile "$n")"), 127.0.0.1:$(port_of "$n")"
      up=$((up + 1))
    else
      echo "Kafka node $n stopped"
    fi
  done
  [ "$up" -eq ${#NODES[@]} ]
}

clean() {
  stop
  rm -rf "$DIR"
  ok "removed $DIR"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  bootstrap) bootstrap ;;
  clean) clean ;;
  node-start) node_start "${2:-}" ;;
  node-stop) node_stop "${2:-}" ;;
  node-kill) node_kill "${2:-}" ;;
  *) echo "usage: $0 start|stop|status|bootstrap|clean|node-start N|node-stop N|node-kill N" >&2; exit 2 ;;
esac
