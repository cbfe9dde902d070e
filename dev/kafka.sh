#!/usr/bin/env bash
# The dev/test Apache Kafka broker: single-node KRaft on 127.0.0.1, from Maven Central jars.
#   dev/kafka.sh install | start | stop | status | libs | as USER CMD... | secured
# (`libs` installs the jars if needed and prints their folder: dev/kafka-cluster.sh runs the same.)
# Set KAFKA_BOOTSTRAP_SERVERS to another cluster to use it instead: start then does nothing.
#
# DEV_KAFKA_SECURITY=sasl (default): SASL/SCRAM-SHA-512 on DEV_KAFKA_PORT (9092), SASL_SSL on
# DEV_KAFKA_TLS_PORT (9094, certificate of a dev CA made here), ACLs (StandardAuthorizer), one
# user per principal of service/adapters/kafka_acls.py plus the super user `admin`; passwords
# and certificates are made once into $STATE/kafka/{secrets,tls}, and env/<user>.env holds each
# user's client settings (`source .dev/kafka/client.env` for the CLI). The ACLs themselves are
# the service's (`sip-trunks acls`, run by dev/stack.sh and the tests).
# DEV_KAFKA_SECURITY=plaintext: one PLAINTEXT listener, no users, no ACLs.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

KAFKA_VERSION=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$ROOT/dev/kafka/pom.xml")
KAFKA_PORT="${DEV_KAFKA_PORT:-9092}"
CONTROLLER_PORT="${DEV_KAFKA_CONTROLLER_PORT:-9093}"
TLS_PORT="${DEV_KAFKA_TLS_PORT:-9094}"
SECURITY="${DEV_KAFKA_SECURITY:-sasl}"
# The principals of service/adapters/kafka_acls.py (PRINCIPALS), and the super user that sets up.
USERS=(admin gateway worker relay reader cli)
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

# password USER: made once (0600), never committed.
password() {
  local file="$DATA/secrets/$1"
  if [ ! -s "$file" ]; then
    (umask 077 && mkdir -p "$DATA/secrets" && head -c 18 /dev/urandom | base64 | tr '+/' '-_' >"$file")
  fi
  cat "$file"
}

# A dev CA and the broker's certificate for 127.0.0.1 and localhost, made once.
make_tls() {
  local tls="$DATA/tls"
  [ -s "$tls/broker.pem" ] && return 0
  command -v openssl >/dev/null || apt_ensure openssl OpenSSL "$DATA/apt.log"
  step "Making a dev CA and the broker's TLS certificate in $tls (first time only)"
  (umask 077 && mkdir -p "$tls")
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=sip-trunks dev CA" \
    -keyout "$tls/ca.key" -out "$tls/ca.crt" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    >"$tls/openssl.log" 2>&1 || { cat "$tls/openssl.log" >&2; die "openssl could not make the CA"; }
  openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout "$tls/broker.key" \
    -out "$tls/broker.csr" >>"$tls/openssl.log" 2>&1 || die "openssl could not make the broker key"
  openssl x509 -req -days 825 -in "$tls/broker.csr" -CA "$tls/ca.crt" -CAkey "$tls/ca.key" \
    -CAcreateserial -out "$tls/broker.crt" -extfile <(printf '%s\n' \
      "subjectAltName=DNS:localhost,IP:127.0.0.1" "extendedKeyUsage=serverAuth" \
      "keyUsage=critical,digitalSignature,keyEncipherment" \
      "subjectKeyIdentifier=hash" "authorityKeyIdentifier=keyid") \
    >>"$tls/openssl.log" 2>&1 || { cat "$tls/openssl.log" >&2; die "openssl could not sign the broker certificate"; }
  # Kafka's PEM key store: the (unencrypted, PKCS#8) key, then the certificate.
  cat "$tls/broker.key" "$tls/broker.crt" >"$tls/broker.pem"
  ok "dev CA: $tls/ca.crt (clients: KAFKA_SSL_CA_FILE)"
}

# SASL/SCRAM for clients (plain and TLS listeners) and between brokers as `admin`; the
# controller listener takes PLAIN with a static `admin` (KRaft controllers cannot use SCRAM:
# its credentials live in the metadata they serve).
sasl_listeners() {
  local admin scram plain
  admin=$(password admin)
  scram="org.apache.kafka.common.security.scram.ScramLoginModule required username=\"admin\" password=\"$admin\";"
  plain="org.apache.kafka.common.security.plain.PlainLoginModule required username=\"admin\" password=\"$admin\" user_admin=\"$admin\";"
  cat <<PROPS
listeners=SASL_PLAINTEXT://127.0.0.1:$KAFKA_PORT,SASL_SSL://127.0.0.1:$TLS_PORT,CONTROLLER://127.0.0.1:$CONTROLLER_PORT
advertised.listeners=SASL_PLAINTEXT://127.0.0.1:$KAFKA_PORT,SASL_SSL://127.0.0.1:$TLS_PORT
inter.broker.listener.name=SASL_PLAINTEXT
listener.security.protocol.map=SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL,CONTROLLER:SASL_PLAINTEXT
sasl.enabled.mechanisms=SCRAM-SHA-512
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config=$scram
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=$scram
sasl.mechanism.controller.protocol=PLAIN
listener.name.controller.sasl.enabled.mechanisms=PLAIN
listener.name.controller.plain.sasl.jaas.config=$plain
ssl.keystore.type=PEM
ssl.keystore.location=$DATA/tls/broker.pem
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
super.users=User:admin
PROPS
}

server_properties() {
  kraft_properties 1 "1@127.0.0.1:$CONTROLLER_PORT" "$DATA/logs" 1 1
  if [ "$SECURITY" = sasl ]; then sasl_listeners; else plaintext_listeners "$KAFKA_PORT" "$CONTROLLER_PORT"; fi
}

# client_env USER PROTOCOL PORT: the settings of a client of USER, to source.
client_env() {
  echo "# Kafka client settings of \`$1\` on the dev broker (dev/kafka.sh); source it."
  echo "export KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:$3"
  echo "export KAFKA_SECURITY_PROTOCOL=$2"
  if [ "$2" != PLAINTEXT ]; then
    echo "export KAFKA_SASL_MECHANISM=SCRAM-SHA-512"
    echo "export KAFKA_SASL_USERNAME=$1"
    echo "export KAFKA_SASL_PASSWORD=$(password "$1")"
  fi
  [ "$2" != SASL_SSL ] || echo "export KAFKA_SSL_CA_FILE=$DATA/tls/ca.crt"
}

# Each user's env file (0600: it holds the password).
write_env() (
  local user protocol=PLAINTEXT
  [ "$SECURITY" = sasl ] && protocol=SASL_PLAINTEXT
  umask 077
  mkdir -p "$DATA/env"
  for user in "${USERS[@]}"; do client_env "$user" "$protocol" "$KAFKA_PORT" >"$DATA/env/$user.env"; done
  cp "$DATA/env/cli.env" "$DATA/client.env"
  if [ "$SECURITY" = sasl ]; then
    client_env cli SASL_SSL "$TLS_PORT" >"$DATA/client-tls.env"
  else
    rm -f "$DATA/client-tls.env"
  fi
)

# What the storage was formatted with: its SCRAM users and their passwords (a digest).
format_marker() {
  local user
  for user in "${USERS[@]}"; do echo "$user $(password "$user")"; done | sha256sum | cut -d' ' -f1
}

format_storage() {
  local marker="" args=() user
  if [ "$SECURITY" = sasl ]; then
    marker=$(format_marker)
    for user in "${USERS[@]}"; do args+=(--add-scram "SCRAM-SHA-512=[name=$user,password=$(password "$user")]"); done
    if [ -f "$DATA/logs/meta.properties" ] && [ "$(cat "$DATA/scram.marker" 2>/dev/null)" != "$marker" ]; then
      # Data of a plaintext broker, or of other users: SCRAM users are added at format time.
      step "Kafka's dev data in $DATA/logs lacks these SCRAM users or passwords (a plaintext broker's?): re-formatting it, its topics and messages dropped"
      rm -rf "$DATA/logs" "$DATA/scram.marker"
      mkdir -p "$DATA/logs"
    fi
  fi
  [ -f "$DATA/logs/meta.properties" ] && return 0
  step "Formatting Kafka storage in $DATA/logs${marker:+ with SCRAM users ${USERS[*]}}"
  run_java kafka.tools.StorageTool format -t "$(run_java kafka.tools.StorageTool random-uuid 2>/dev/null)" \
    -c "$DATA/server.properties" "${args[@]}" >"$DATA/format.log" 2>&1 || { cat "$DATA/format.log" >&2; die "format failed"; }
  [ -z "$marker" ] || echo "$marker" >"$DATA/scram.marker"
}

# The caller names a cluster of its own (naming this broker, as env/<user>.env does, is not one).
other_cluster() {
  [ -n "${KAFKA_BOOTSTRAP_SERVERS:-}" ] && [ "$KAFKA_BOOTSTRAP_SERVERS" != "127.0.0.1:$KAFKA_PORT" ]
}

# as USER CMD...: exec CMD as USER of this broker (its env file; DEV_KAFKA_ENV names the folder
# of every user's, for the tests); on another cluster, with the caller's settings as they are.
as_user() {
  local user=$1
  shift
  if ! other_cluster && [ -f "$DATA/env/$user.env" ]; then
    source "$DATA/env/$user.env"
    export DEV_KAFKA_ENV="$DATA/env"
  fi
  exec "$@"
}

# secured: this broker is the one in use and authorizes (so its ACLs are ours to grant).
secured() {
  ! other_cluster && grep -qs SASL "$DATA/env/admin.env"
}

run_java() { "$JAVA" -Xms256m -Xmx768m -cp "$LIBS/*" "$@"; }

start() {
  local config
  if other_cluster; then ok "using Kafka at $KAFKA_BOOTSTRAP_SERVERS"; return; fi
  [[ $SECURITY == sasl || $SECURITY == plaintext ]] || die "DEV_KAFKA_SECURITY must be sasl or plaintext, not '$SECURITY'"
  mkdir -p "$DATA/logs"
  [ "$SECURITY" = plaintext ] || make_tls
  config=$(server_properties)
  if pid_alive "$PIDFILE"; then
    # A broker started with other settings (say, plaintext by an older checkout) is not what
    # the caller's clients expect: say so rather than fail later on a refused connection.
    [ "$config" = "$(cat "$DATA/server.properties" 2>/dev/null)" ] ||
      die "Kafka runs (pid $(cat "$PIDFILE")) with other settings than DEV_KAFKA_SECURITY=$SECURITY asks for: dev/kafka.sh stop first"
    write_env
    ok "Kafka already running (pid $(cat "$PIDFILE")) on 127.0.0.1:$KAFKA_PORT ($SECURITY)"
    return
  fi
  if port_open 127.0.0.1 "$KAFKA_PORT"; then die "port $KAFKA_PORT is taken by another process"; fi
  install
  (umask 077 && echo "$config" >"$DATA/server.properties")
  format_storage
  write_env
  step "Starting Kafka $KAFKA_VERSION (KRaft) on 127.0.0.1:$KAFKA_PORT$([ "$SECURITY" = sasl ] && echo " (SASL/SCRAM), TLS on 127.0.0.1:$TLS_PORT, ACLs on")"
: >"$DATA/stdout.log"
  daemonize "$DATA/stdout.log" "$JAVA" -Xms256m -Xmx768m -XX:+UseG1GC -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$ROOT/dev/kafka/log4j2.properties" -Dkafka.logfile="$LOG" \
    -cp "$LIBS/*" kafka.Kafka "$DATA/server.properties" >"$PIDFILE"
  wait_port 127.0.0.1 "$KAFKA_PORT" 90 Kafka "$DATA/stdout.log"
  [ "$SECURITY" = plaintext ] || ok "client settings: $DATA/env/<user>.env (users: ${USERS[*]})"
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
  as) [ $# -ge 3 ] || die "usage: $0 as USER CMD..."; shift; as_user "$@" ;;
  secured) secured ;;
  *) echo "usage: $0 install|start|stop|status|libs|as USER CMD...|secured" >&2; exit 2 ;;
esac
