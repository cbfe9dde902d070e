# The two commands a newcomer needs: `make run` (the stack, up and usable) and `make test`.
# Both install what they need on a fresh machine and are fast the second time.
SHELL := /bin/bash
API := http://$(or $(GATEWAY_HOST),127.0.0.1):$(or $(GATEWAY_PORT),8080)
PYTHON ?= python3
DEV_STATE := $(or $(SIP_DEV_STATE),.dev)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run token stop status logs test test-unit faults lint format contracts constraints bench clean help

help:
	@echo "make run    - install, start Kafka, LiveKit, the worker and the relay (background)"
	@echo "make test   - install, start Kafka, LiveKit and PostgreSQL, run every test"
	@echo "make stop   - stop everything make run / make test started"
	@echo "make faults - fault suite: kills and outages on a 3-node Kafka cluster, PostgreSQL, LiveKit (~3 min)"
	@echo "make status | logs | lint | format | contracts | bench"

$(STAMP): pyproject.toml contracts/pyproject.toml constraints.txt
	@printf '\033[1;34m==>\033[0m Installing Python packages into $(VENV) (first time: about a minute)\n'
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
		|| { echo "Python >= 3.11 is needed (set PYTHON=...)"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --upgrade pip
	@set -o pipefail; $(BIN)/python -m pip install --progress-bar off -c constraints.txt -e ./contracts -e ".[dev]" \
		| sed -un '/^Collecting\|^Successfully/p'
	@touch $(STAMP)
	@printf '\033[1;32m  ✓\033[0m Python packages installed\n'

run: $(STAMP)
	@dev/kafka.sh start
	@dev/livekit.sh start
	@dev/stack.sh up
	@echo
	@echo "The stack is up: REST API at $(API), Kafka at $(or $(KAFKA_BOOTSTRAP_SERVERS),127.0.0.1:$(or $(DEV_KAFKA_PORT),9092)), LiveKit at $(or $(LIVEKIT_URL),http://127.0.0.1:$(or $(DEV_LIVEKIT_PORT),7880)). Try it:"
	@echo "  export TOKEN=\$$($(BIN)/sip-trunks token --tenant acme)"
	@echo "  curl -s -X POST $(API)/api/v1/sip-trunks -H \"Authorization: Bearer \$$TOKEN\" -H 'Content-Type: application/json' \\"
	@echo "       -d '{\"name\": \"Office\", \"gateways\": [{\"ipOrDomain\": \"sip.example.com\", \"name\": \"main\"}]}'"
	@echo "  curl -s $(API)/api/v1/sip-trunks -H \"Authorization: Bearer \$$TOKEN\""
	@! dev/kafka.sh secured || echo "  source $(DEV_STATE)/kafka/client.env   # Kafka user and password of the CLI (user cli; SASL/SCRAM)"
	@echo "  $(BIN)/sip-trunks watch events      # every event on Kafka, as JSON lines"
	@echo "More in README.md. Logs: make logs   Stop: make stop"

token: $(STAMP)
	@$(BIN)/sip-trunks token --tenant $(or $(TENANT),tenant-dev)

stop:
	@dev/stack.sh down
	@dev/kafka.sh stop
	@dev/kafka-cluster.sh stop
	@dev/livekit.sh stop
	@dev/postgres.sh stop

status:
	@dev/stack.sh status; dev/kafka.sh status || true; dev/livekit.sh status || true; dev/postgres.sh status || true

logs:
	@tail -n 50 -F .dev/logs/worker.log .dev/logs/relay.log .dev/logs/gateway.log

test: $(STAMP)
	@dev/kafka.sh start
	@dev/livekit.sh start
	@dev/postgres.sh start
	@printf '\033[1;34m==>\033[0m Running the tests (unit, contracts, integration on Kafka, LiveKit, SQLite, PostgreSQL)\n'
	@dev/kafka.sh as admin $(BIN)/pytest

test-unit: $(STAMP)
	@$(BIN)/pytest tests/unit tests/contracts

# Worker/relay SIGKILLs, Kafka node restarts and kills, PostgreSQL and LiveKit outages under a
# command stream; one table; fails on any lost, duplicated or reordered outcome (tests/faults/).
# Starts and stops its own 3-node Kafka cluster and PostgreSQL; the shared dev servers are untouched.
faults: $(STAMP)
	@dev/livekit.sh start
	@$(BIN)/python -m tests.faults

lint: $(STAMP)
	@$(BIN)/ruff check .
	@$(BIN)/ruff format --check .
	@$(BIN)/mypy

format: $(STAMP)
	@$(BIN)/ruff check --fix .
	@$(BIN)/ruff format .

constraints: $(STAMP)
	@(echo "# Exact versions the tests pass with (pip install -c constraints.txt); refresh: make constraints"; \
		$(BIN)/pip freeze --exclude-editable) > constraints.txt

contracts: $(STAMP)
	@$(BIN)/python -m sip_trunk_contracts._generate

# Starts what its steps use (Kafka, LiveKit with Redis, PostgreSQL), then: service throughput
# (worker + relay processes) as a ratio of a raw aiokafka pipe, same broker, same run (BENCH_N
# 20000); REST latency with and without LiveKit, against a raw Kafka request-reply round trip; the
# read model's list cost in-process; a gateway's start-up on 100,000 trunks; REST under 20
# concurrent clients; cost and memory over 100,000 creates and 100,000 updates. Ends with
# one table (bench/summary.py), everything in .dev/bench-latest.json; BENCH_RECORD=1 also appends
# the headline figures to docs/performance.md.
bench: $(STAMP)
	@dev/kafka.sh start
	@dev/livekit.sh start
	@dev/postgres.sh start
	@rm -f .dev/bench-*.json
	@dev/kafka.sh as admin $(BIN)/python -m bench.throughput
	@dev/kafka.sh as admin $(BIN)/python -m bench.latency
	@$(BIN)/python -m bench.read_model
	@dev/kafka.sh as admin $(BIN)/python -m bench.gateway_start
	@dev/kafka.sh as admin $(BIN)/python -m bench.concurrency
	@dev/kafka.sh as admin $(BIN)/python -m bench.scale
	@$(BIN)/python -m bench.summary

clean: stop
	rm -rf .dev data
