#!/usr/bin/env bash
# The whole test suite on a fresh machine of this project's kind (Debian
# with Rust, as root): starts or installs what the tests need, then runs
# them. It fails, never skips, when something cannot be had.
#
#   bash scripts/test.sh            # everything
#   bash scripts/test.sh --test leases   # extra arguments go to cargo test
#
# What it sees to:
# - PostgreSQL at 127.0.0.1:5432 (or CARTWRIGHT_TEST_DATABASE_URL): started
#   with pg_ctlcluster when it is installed but not running; its server
#   binaries (initdb, pg_basebackup, pg_ctl) also serve the failover test,
#   which runs clusters of its own.
# - Chromium and chromedriver for the browser test: installed from the
#   operating system's packages when missing.
# - NATS with JetStream at 127.0.0.1:4222 for the relay's NATS sink:
#   started when not running; the NATS server binary also serves a test
#   that stops and restarts a server of its own.
# - RabbitMQ at 127.0.0.1:5672 (guest/guest) for the relay's RabbitMQ
#   sink: started when not running.
# - The UCP conformance suite (../shared/ucp): its Python environment is
#   built from PyPI by its own runner (python3-venv installed if missing).
# .ci/run calls this same script (the README names it), so the two cannot
# drift.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { echo "scripts/test.sh: $*"; }
fail() { echo "scripts/test.sh: $*" >&2; exit 1; }

apt_install() {
  command -v apt-get >/dev/null 2>&1 || fail "cannot install $*: no apt-get here"
  say "installing $*"
  if [ -z "${CARTWRIGHT_APT_UPDATED:-}" ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null || fail "apt-get update failed"
    export CARTWRIGHT_APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null \
    || fail "could not install $*"
}

# PostgreSQL: started when installed and not running; the tests need it.
if [ -z "${CARTWRIGHT_TEST_DATABASE_URL:-}" ]; then
  if ! command -v pg_isready >/dev/null 2>&1; then
    apt_install postgresql
  fi
  if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
    say "starting PostgreSQL"
    version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1)
    [ -n "$version" ] || fail "no PostgreSQL cluster in /etc/postgresql"
    pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  fi
  for _ in $(seq 1 30); do
    pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null && break
    sleep 1
  done
  pg_isready -h 127.0.0.1 -p 5432 -q || fail "PostgreSQL at 127.0.0.1:5432 cannot be reached"
  psql -h 127.0.0.1 -U postgres -d postgres -tAc 'select 1' >/dev/null \
    || fail "PostgreSQL at 127.0.0.1:5432 refuses the postgres user (trust authentication expected)"
fi

# NATS with JetStream for the relay's NATS sink: started when installed
# and not running.
if ! (echo > /dev/tcp/127.0.0.1/4222) 2>/dev/null; then
  if ! command -v nats-server >/dev/null 2>&1 && [ ! -x /usr/sbin/nats-server ]; then
    apt_install nats-server
  fi
  say "starting NATS with JetStream"
  mkdir -p /var/lib/nats-server
  start-stop-daemon --start --oknodo --background --exec "$(command -v nats-server || echo /usr/sbin/nats-server)" -- \
    -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log || true
  for _ in $(seq 1 30); do
    (echo > /dev/tcp/127.0.0.1/4222) 2>/dev/null && break
    sleep 1
  done
  (echo > /dev/tcp/127.0.0.1/4222) 2>/dev/null || fail "NATS at 127.0.0.1:4222 cannot be reached"
fi

# RabbitMQ for the relay's RabbitMQ sink: started when installed and not
# running (its test stops and starts the broker's application itself).
if ! (echo > /dev/tcp/127.0.0.1/5672) 2>/dev/null; then
  if ! command -v rabbitmq-server >/dev/null 2>&1; then
    apt_install rabbitmq-server
  fi
  say "starting RabbitMQ"
  # A node whose application an interrupted test run left stopped only
  # needs the application started; otherwise start the node.
  timeout 60 rabbitmqctl -q start_app >/dev/null 2>&1 || rabbitmq-server -detached || true
  for _ in $(seq 1 60); do
    (echo > /dev/tcp/127.0.0.1/5672) 2>/dev/null && break
    sleep 1
  done
  (echo > /dev/tcp/127.0.0.1/5672) 2>/dev/null || fail "RabbitMQ at 127.0.0.1:5672 cannot be reached"
fi

# The failover test runs two clusters of its own with the server binaries.
pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
if [ -z "$pg_bin" ] || [ ! -x "$pg_bin/pg_basebackup" ] || [ ! -x "$pg_bin/initdb" ]; then
  apt_install postgresql
  pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
fi
export CARTWRIGHT_PG_BIN="${CARTWRIGHT_PG_BIN:-$pg_bin}"

# Chromium and chromedriver for the storefront's browser test.
if ! command -v chromedriver >/dev/null 2>&1 || ! command -v chromium >/dev/null 2>&1; then
  apt_install chromium chromium-driver
fi

say "running cargo test --all-features $*"
cargo test --all-features "$@"

# The UCP conformance suite against examples/ucp_merchant, on both stores
# (only for the whole suite, not when arguments pick tests).
if [ $# -eq 0 ]; then
  bash scripts/ucp_conformance.sh
fi
