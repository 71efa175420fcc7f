#!/usr/bin/env bash
# Make sure RabbitMQ (with its management API) and PostgreSQL answer on this
# machine, starting them when they are installed but stopped. Used by
# `make test` and `make demo`; says clearly what is missing otherwise.
set -euo pipefail

need_pg="${1:-yes}"

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

if ! port_open 5672; then
  if command -v rabbitmq-server >/dev/null 2>&1; then
    echo "starting RabbitMQ (rabbitmq-server -detached)…" >&2
    rabbitmq-server -detached
    for _ in $(seq 1 60); do port_open 5672 && break; sleep 1; done
  else
    echo "RabbitMQ is not installed and nothing listens on 127.0.0.1:5672." >&2
    echo "Install it (Debian: apt-get install rabbitmq-server) or set RELAIS_AMQP_URI to a running broker." >&2
    exit 1
  fi
fi
if command -v rabbitmqctl >/dev/null 2>&1; then
  rabbitmqctl -q await_startup >/dev/null 2>&1 || true
  if ! port_open 15672; then
    echo "enabling the RabbitMQ management API (tests create throw-away vhosts with it)…" >&2
    rabbitmq-plugins -q enable rabbitmq_management >/dev/null
    for _ in $(seq 1 30); do port_open 15672 && break; sleep 1; done
  fi
  if ! port_open 15692; then
    echo "enabling RabbitMQ's Prometheus endpoint (the monitoring tests read its queue metrics)…" >&2
    rabbitmq-plugins -q enable rabbitmq_prometheus >/dev/null
    for _ in $(seq 1 30); do port_open 15692 && break; sleep 1; done
  fi
fi
port_open 5672 || { echo "RabbitMQ did not come up on 127.0.0.1:5672" >&2; exit 1; }

if [ "$need_pg" = "yes" ] && ! port_open 5432; then
  if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
    echo "starting PostgreSQL…" >&2
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start
    for _ in $(seq 1 30); do port_open 5432 && break; sleep 1; done
  else
    echo "PostgreSQL is not installed and nothing listens on 127.0.0.1:5432." >&2
    echo "Install it (Debian: apt-get install postgresql) or set RELAIS_TEST_POSTGRES_URL." >&2
    exit 1
  fi
fi
# xmlsec1: the pysaml2 identity provider in the SAML interoperability tests signs and encrypts with it.
if ! command -v xmlsec1 >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "installing xmlsec1 (apt-get install -y xmlsec1; pysaml2 needs the binary)…" >&2
    apt-get install -y -q xmlsec1 >/dev/null 2>&1 || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q xmlsec1 >/dev/null 2>&1; } || true
  fi
  command -v xmlsec1 >/dev/null 2>&1 || {
    echo "xmlsec1 is missing: the SAML interoperability tests (pysaml2) need it." >&2
    echo "Install it (Debian/Ubuntu: apt-get install xmlsec1; macOS: brew install libxmlsec1) and run again." >&2
    exit 1; }
fi
# Dovecot (Debian's dovecot-imapd): the IMAP connector's tests (tests/connectors/test_imap.py) start their own
# unprivileged instance on free ports from a temporary folder; the system's service is never started nor used.
if [ ! -x /usr/sbin/dovecot ] && ! command -v dovecot >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "installing dovecot (apt-get install -y dovecot-imapd)…" >&2
    apt-get install -y -q --no-install-recommends dovecot-imapd >/dev/null 2>&1 || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q --no-install-recommends dovecot-imapd >/dev/null 2>&1; } || true
  fi
  { [ -x /usr/sbin/dovecot ] || command -v dovecot >/dev/null 2>&1; } || {
    echo "dovecot is missing: the IMAP connector's tests run it." >&2
    echo "Install it (Debian/Ubuntu: apt-get install dovecot-imapd; macOS: brew install dovecot) and run again." >&2
    exit 1; }
fi
# Prometheus (package prometheus): promtool checks and unit-tests the alert rules (tests/deploy/test_monitoring.py),
# the server runs them and the dashboards' queries against live processes (tests/e2e/test_monitoring_live.py).
if ! command -v promtool >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "installing promtool (apt-get install -y prometheus)…" >&2
    apt-get install -y -q --no-install-recommends prometheus >/dev/null 2>&1 || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q --no-install-recommends prometheus >/dev/null 2>&1; } || true
  fi
  command -v promtool >/dev/null 2>&1 || {
    echo "promtool is missing (and the prometheus server): the monitoring tests run them." >&2
    echo "Install it (Debian/Ubuntu: apt-get install prometheus; macOS: brew install prometheus) and run again." >&2
    exit 1; }
fi
# Chromium and its driver (Debian's chromium, chromium-driver): the operator console's browser tests
# (tests/console/test_browser.py) drive it with selenium; axe-core, pinned in tests/console/axe/package-lock.json,
# is what they run on every page (npm ci: the exact version locked, from the npm registry).
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "installing chromium and chromium-driver (apt-get install -y chromium chromium-driver)…" >&2
    apt-get install -y -q --no-install-recommends chromium chromium-driver >/dev/null 2>&1 || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q --no-install-recommends chromium chromium-driver >/dev/null 2>&1; } || true
  fi
  { command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; } || {
    echo "chromium or chromedriver is missing: the console's browser tests drive them." >&2
    echo "Install them (Debian: apt-get install chromium chromium-driver) and run again." >&2
    exit 1; }
fi
axe_dir="$(cd "$(dirname "$0")/.." && pwd)/tests/console/axe"
if [ -f "$axe_dir/package-lock.json" ] && [ ! -f "$axe_dir/node_modules/axe-core/axe.min.js" ]; then
  command -v npm >/dev/null 2>&1 || {
    echo "npm is missing: the console's browser tests need axe-core from it (Debian: apt-get install npm)." >&2
    exit 1; }
  echo "installing axe-core for the console's browser tests (npm ci in tests/console/axe)…" >&2
  (cd "$axe_dir" && npm ci --no-audit --no-fund --silent) || {
    echo "npm ci in $axe_dir failed: the console's browser tests need axe-core." >&2
    exit 1; }
fi
exit 0
