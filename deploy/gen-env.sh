#!/bin/sh
# Prepare a host for `docker compose up`: write .env from .env.example with fresh
# random secrets, copy deploy/sso.example.yaml to ./sso.yaml, and create the
# folders the stack mounts. Run from the checkout's top folder (or pass it).
#
# It never overwrites: an existing .env keeps its secrets (a new SSO secret
# would change every pseudonymous identifier; new database or broker passwords
# would no longer match the data volumes).
set -eu

top="${1:-.}"
cd "$top"
[ -f .env.example ] || { echo "gen-env.sh: no .env.example in $(pwd): run it from the Relais checkout" >&2; exit 1; }
if [ -e .env ]; then
  echo "gen-env.sh: $(pwd)/.env exists; left as it is (delete it first to start over, losing its secrets)" >&2
  exit 1
fi

secret() {  # 48 hex digits (192 bits): URL-safe, long enough for every secret here
  od -An -tx1 -N24 /dev/urandom | tr -d ' \n'
}

umask 077
tmp=".env.tmp.$$"
trap 'rm -f "$tmp"' EXIT
while IFS= read -r line || [ -n "$line" ]; do
  case "$line" in
    POSTGRES_PASSWORD=|RABBITMQ_PASSWORD=|MINIO_ROOT_PASSWORD=|RELAIS_SSO_SECRET=|GRAFANA_ADMIN_PASSWORD=|\
    RELAIS_CONSOLE_SECRET=|\
    RELAIS_BROKER_PASSWORD_*=)
      printf '%s%s\n' "$line" "$(secret)" ;;
    *) printf '%s\n' "$line" ;;
  esac
done < .env.example > "$tmp"
mv "$tmp" .env
trap - EXIT
echo "wrote $(pwd)/.env (mode 600) with new secrets; keep a copy of RELAIS_SSO_SECRET in your secret store"

umask 022
if [ ! -e sso.yaml ]; then
  cp deploy/sso.example.yaml sso.yaml
  echo "wrote $(pwd)/sso.yaml from deploy/sso.example.yaml: set base_url and the CAS services before starting"
fi
mkdir -p var/aaf usage
if [ ! -d saml ]; then
  # The containers run as uid 10001: it must read the keys, and nobody else.
  mkdir -m 0750 saml
  if chown 10001:10001 saml 2>/dev/null; then
    echo "created $(pwd)/saml (owner uid 10001) for the SAML key pairs (deploy/keys.md)"
  else
    echo "created $(pwd)/saml for the SAML key pairs: run 'sudo chown 10001:10001 saml' (deploy/keys.md)"
  fi
fi
