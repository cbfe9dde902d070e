#!/usr/bin/env bash
# The dev/test Apache Kafka broker: single-node KRaft on 127.0.0.1, from Maven Central jars.
#   dev/kafka.sh install | start | stop | status | libs
# (`libs` installs the jars if needed and prints their folder: dev/kafka-cluster.sh runs the same.)
# Set KAFKA_BOOTSTRAP_SERVERS to use another cluster instead: start then does nothing.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

KAFKA_VERSION=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$ROOT/dev/kafka/pom.xml")
KAFKA_PORT="${DEV_KAFKA_PORT:-9092}"
CONTROLLER_PORT="${DEV_KAFKA_CONTROLLER_PORT:-9093}"
LIBS="$CACHE/kafka-$KAFKA_VERSION/libs"
DATA="$STATE/kafka"
PIDFILE="$DATA/kafka.pid"
LOG="$DATA/server.log"
JAVA="${JAVA_HOME:+$JAVA_HOME/bin/}java"

install() {
  if [ -f "$LIBS/.complete" ]; then ok "Kafka $KAFKA_VERSION jars cached in $LIBS"; return; fi
  command -v mvn >/dev/null || die "Maven (mvn) is needed to fetch the Kafka jars"
  step "Fetching Apache Kafka $KAFKA_VERSION and its runtime dependencies from Maven Central (first time only)"
  rm -rf "$LIBS" && mkdir -p "$LIBS"
  # (-q leaves only errors; the sed drops the colour codes Maven prints even then.)
  mvn -B -q -Dstyle.color=never -f "$ROOT/dev/kafka/pom.xml" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$LIBS" 2>&1 | sed 's/\x1b\[[0-9;]*m//g' >&2 ||
    die "Maven could not resolve the Kafka jars"
  touch "$LIBS/.complete"
  ok "Kafka $KAFKA_VERSION: $(ls "$LIBS"/*.jar | wc -l) jars in $LIBS"
}

write_config() {
  mkdir -p "$DATA/logs"
  kraft_properties 1 "1@127.0.0.1:$CONTROLLER_PORT" "$KAFKA_PORT" "$CONTROLLER_PORT" "$DATA/logs" 1 1 \
    >"$DATA/server.properties"
}

run_java() { "$JAVA" -Xms256m -Xmx768m -cp "$LIBS/*" "$@"; }

start() {
  if [ -n "${KAFKA_BOOTSTRAP_SERVERS:-}" ]; then ok "using Kafka at $KAFKA_BOOTSTRAP_SERVERS"; return; fi
  if pid_alive "$PIDFILE"; then ok "Kafka already running (pid $(cat "$PIDFILE")) on 127.0.0.1:$KAFKA_PORT"; return; fi
  if port_open 127.0.0.1 "$KAFKA_PORT"; then die "port $KAFKA_PORT is taken by another process"; fi
  install
  write_config
  if [ ! -f "$DATA/logs/meta.properties" ]; then
    step "Formatting Kafka storage in $DATA/logs"
    run_java kafka.tools.StorageTool format -t "$(run_java kafka.tools.StorageTool random-uuid 2>/dev/null)" \
      -c "$DATA/server.properties" >"$DATA/format.log" 2>&1 || { cat "$DATA/format.log" >&2; die "format failed"; }
  fi
  step "Starting Kafka $KAFKA_VERSION (KRaft) on 127.0.0.1:$KAFKA_PORT"
: >"$DATA/stdout.log"
  daemonize "$DATA/stdout.log" "$JAVA" -Xms256m -Xmx768m -XX:+UseG1GC -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$ROOT/dev/kafka/log4j2.properties" -Dkafka.logfile="$LOG" \
    -cp "$LIBS/*" kafka.Kafka "$DATA/server.properties" >"$PIDFILE"
  wait_port 127.0.0.1 "$KAFKA_PORT" 90 Kafka "$DATA/stdout.log"
}

stop() { stop_pid "$PIDFILE" Kafka; }

status() {
  if pid_alive "$PIDFILE"; then echo "Kafka running, pid $(cat "$PIDFILE"), 127.0.0.1:$KAFKA_PORT"; else echo "Kafka stopped"; return 1; fi
}

case "${1:-}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  status) status ;;
  libs) install && echo "$LIBS" ;;
  *) echo "usage: $0 install|start|stop|status|libs" >&2; exit 2 ;;
esac
