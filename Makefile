# Relais: `make demo` and `make test` do all the set-up on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml connectors/sdk/pyproject.toml | cksum | cut -d' ' -f1)
BENCH_PERSONS ?= 1000000
BENCH_EVENTS  ?= 100000
VAULT_PERSONS ?= 2000
VAULT_FILES   ?= 20000
VAULT_MB      ?= 2000
SSO_PERSONS   ?= 100000
SSO_LOGINS    ?= 2000
SCIM_USERS    ?= 100000
USAGE_PERSONS ?= 1000000
USAGE_EVENTS  ?= 2000000
CONSOLE_PERSONS ?= 1000000

.PHONY: help venv services check test test-cluster demo bench-directory bench-provisioning bench-vault bench-sso bench-scim bench-usage bench-console clean

help:
	@echo "make demo             import the sample academy end to end and show a summary"
	@echo "make test             make check, then the whole test suite (starts RabbitMQ/PostgreSQL if needed)"
	@echo "make test-cluster     a three-node RabbitMQ cluster losing a node mid-import (tests/cluster; CI runs it)"
	@echo "make check            the import contracts (no cycle, kernel below services, services apart), mypy, ruff"
	@echo "make bench-directory  import benchmark (BENCH_PERSONS=$(BENCH_PERSONS); BENCH_FIRST_DEGREE_SHARE=0.5 for a mixed academy, half écoles; DIRECTORY_DATABASE_URL=postgresql://… (emptied!) for PostgreSQL); prints one JSON line last"
	@echo "make bench-provisioning  rules, event stream and GAR export (BENCH_PERSONS, BENCH_EVENTS; BENCH_FIRST_DEGREE_SHARE=0.5: half écoles, their GAR-ENT-1D feed too; PROVISIONING_DATABASE_URL=postgresql://… (emptied!)); JSON line last"
	@echo "make bench-vault      contract-end export WebDAV -> S3 vs the naive copy, kill and resume, verify, bags vs the raw copy, incremental sync of 1 % changed vs the export (VAULT_PERSONS, VAULT_FILES, VAULT_MB); JSON line last"
	@echo "make bench-sso        federated logins: SAML ACS, matching, session, CAS ticket and validation, vs bare python3-saml; OIDC code flows vs Authlib's bare signing (SSO_PERSONS, SSO_LOGINS; SSO_DATABASE_URL=postgresql://… (emptied!) for PostgreSQL); JSON line last"
	@echo "make bench-usage      usage statistics: USAGE_EVENTS=$(USAGE_EVENTS) SSO events over USAGE_PERSONS=$(USAGE_PERSONS) people ingested vs a bare consume-and-count floor, the month closed and reported (USAGE_DATABASE_URL=postgresql://… (emptied!)); JSON line last"
	@echo "make bench-console    the operator console's server time per page and per person search over CONSOLE_PERSONS=$(CONSOLE_PERSONS) (CONSOLE_DATABASE_URL=postgresql://… (emptied!)); JSON line last"
	@echo "make bench-scim       SCIM list requests with a filter over SCIM_USERS=$(SCIM_USERS) users vs the raw SQL floor (SCIM_DATABASE_URL=postgresql://… (emptied!)); JSON line last"

$(STAMP): pyproject.toml connectors/sdk/pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]' -e './connectors/sdk[kit]'
	@rm -f $(VENV)/.installed-* && touch $@

venv: $(STAMP)

services:
	@scripts/ensure-services.sh

check: venv
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy
	$(VENV)/bin/ruff check app relais services connectors tools tests

test: venv services check
	$(PY) -m pytest -q --ignore=tests/cluster

# Starts three RabbitMQ nodes of its own beside the machine's broker (deploy/rabbitmq-cluster.md): 50-60 s.
test-cluster: venv services
	$(PY) -m pytest -q tests/cluster

demo: venv
	@scripts/ensure-services.sh no-postgres
	$(PY) -m tools.demo

bench-directory: venv services
	$(PY) -m tools.bench.directory --persons $(BENCH_PERSONS) $(if $(DIRECTORY_DATABASE_URL),--database-url $(DIRECTORY_DATABASE_URL)) $(if $(BENCH_FIRST_DEGREE_SHARE),--first-degree-share $(BENCH_FIRST_DEGREE_SHARE))

bench-provisioning: venv services
	$(PY) -m tools.bench.provisioning --persons $(BENCH_PERSONS) --events $(BENCH_EVENTS) $(if $(PROVISIONING_DATABASE_URL),--database-url $(PROVISIONING_DATABASE_URL)) $(if $(BENCH_FIRST_DEGREE_SHARE),--first-degree-share $(BENCH_FIRST_DEGREE_SHARE))

bench-vault: venv
	$(PY) -m tools.bench.vault --persons $(VAULT_PERSONS) --files $(VAULT_FILES) --total-mb $(VAULT_MB)

bench-sso: venv services
	$(PY) -m tools.bench.sso --persons $(SSO_PERSONS) --logins $(SSO_LOGINS) $(if $(SSO_DATABASE_URL),--database-url $(SSO_DATABASE_URL))

bench-usage: venv services
	$(PY) -m tools.bench.usage --persons $(USAGE_PERSONS) --events $(USAGE_EVENTS) $(if $(USAGE_DATABASE_URL),--database-url $(USAGE_DATABASE_URL))

bench-console: venv services
	$(PY) -m tools.bench.console --persons $(CONSOLE_PERSONS) $(if $(CONSOLE_DATABASE_URL),--database-url $(CONSOLE_DATABASE_URL))

bench-scim: venv services
	$(PY) -m tools.bench.scim --users $(SCIM_USERS) $(if $(SCIM_DATABASE_URL),--database-url $(SCIM_DATABASE_URL))

clean:
	rm -rf var bench-data .pytest_cache
