# syntax=docker/dockerfile:1
# Relais: one image for every service.
#
#   docker build -t relais:0.1.0 .
#   docker run --rm -e RELAIS_SERVICE=provisioning relais:0.1.0 serve provisioning
#
# ENTRYPOINT is the `relais` command, so any subcommand runs as the container's
# command (`serve sso`, `db upgrade`, `directory import /data`, `status`...).
# The default health check asks the ops port's /readyz of the service named by
# RELAIS_SERVICE (default: directory, the default command's service); set it
# with the command, or give the container a health check of its own, as
# docker-compose.yml does. Operator guide: deploy/README.md.

# Debian 12 base: the package names below are those of bookworm. Bump the tag
# (and check `apt-get install` still finds them) to move to a newer Debian.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- build: a virtualenv holding Relais and its pinned dependencies ---------
FROM ${PYTHON_IMAGE} AS build

# The compilers and headers are used only when a dependency has no wheel for
# the target platform (xmlsec then builds against the system's libxml2 and
# libxmlsec1). Debian packages are not pinned: security updates replace old
# versions on the mirrors, so a pinned build would break within weeks.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      gcc libc6-dev pkg-config libxml2-dev libxslt1-dev libxmlsec1-dev libltdl-dev \
 && rm -rf /var/lib/apt/lists/*

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore
RUN python -m venv /opt/relais/venv

WORKDIR /src
# What the context holds is decided by .dockerignore (no .venv, var, tests, .env...).
COPY . .
# Not editable: the image holds no source tree. Versions are the ones pinned in pyproject.toml; the
# connector SDK is its own distribution (connectors/sdk/pyproject.toml), which relais depends on.
RUN /opt/relais/venv/bin/pip install /src/connectors/sdk /src

# --- runtime: no compiler, no headers, no source tree, not root -------------
FROM ${PYTHON_IMAGE}

LABEL org.opencontainers.image.title="Relais" \
      org.opencontainers.image.description="Directory, SSO, provisioning and vault beside a French school ENT" \
      org.opencontainers.image.licenses="AGPL-3.0-or-later"

# The xmlsec runtime (libxmlsec1 with its OpenSSL backend, libxml2, libxslt)
# for the SSO's SAML signatures, needed when xmlsec was built from source above;
# the x86_64 wheel carries its own copy.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends libxmlsec1-openssl libxslt1.1 \
 && rm -rf /var/lib/apt/lists/*

# A fixed uid/gid, so volumes and Kubernetes' runAsUser can name it.
RUN groupadd --system --gid 10001 relais \
 && useradd --system --uid 10001 --gid relais --home-dir /var/lib/relais --no-create-home \
      --shell /usr/sbin/nologin relais \
 && install -d -o relais -g relais -m 0750 /var/lib/relais

COPY --from=build /opt/relais/venv /opt/relais/venv
# The message contracts (JSON Schemas, AsyncAPI) are read at run time; the
# installed package does not carry them, so RELAIS_CONTRACTS_DIR says where they are.
COPY contracts /opt/relais/contracts

ENV PATH=/opt/relais/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    RELAIS_CONTRACTS_DIR=/opt/relais/contracts \
    RELAIS_DATA_DIR=/var/lib/relais \
    RELAIS_LOG_FORMAT=json \
    RELAIS_OPS_HOST=0.0.0.0 \
    RELAIS_OPS_PORT=9100 \
    RELAIS_SERVICE=directory

# Fail the build, not the first login, when lxml and xmlsec do not share one
# libxml2 (they refuse to import together: "lxml & xmlsec libxml2 library version
# mismatch"; pyproject.toml pins them as a pair), when a library a service imports
# is missing (app.bootstrap loads every service's process, the SSO's SAML with it),
# or the command line does not load.
RUN python -c "import lxml.etree, xmlsec, app.bootstrap" \
 && relais --help > /dev/null

USER 10001:10001
WORKDIR /var/lib/relais

# 9100: /healthz, /readyz, /metrics of every service; 8420: provisioning API; 8430: sso.
EXPOSE 9100 8420 8430

HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
  CMD ["/bin/sh", "-c", "relais health \"$RELAIS_SERVICE\" --timeout 5 || exit 1"]

ENTRYPOINT ["relais"]
CMD ["serve", "directory"]
