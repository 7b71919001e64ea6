# syntax=docker/dockerfile:1
#
# icws-bridge image: `bridge run` as a non-root user (10001) on a read-only root filesystem.
#
#   docker build -t icws-bridge:0.1.0 --build-arg VERSION=0.1.0 --build-arg REVISION="$(git rev-parse HEAD)" .
#
# Stage "build" installs the package with the pinned dependencies of constraints.txt into a
# virtual environment; the runtime stage copies only that environment (no pip cache, no sources,
# no compilers). Both stages use the same base image, so the environment's interpreter path holds.
# docs/operations.md says how to run it; helm/icws-bridge deploys it.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src
# Only what `pip install .` needs (.dockerignore keeps everything else out of the context).
COPY constraints.txt pyproject.toml README.md ./
COPY bridge/ ./bridge/
# Every version comes from constraints.txt. pip byte-compiles the installed modules, so the
# read-only runtime never needs to write .pyc files. `bridge schemas --check` proves the console
# script and the service's modules load with the runtime dependencies alone (the context holds
# no simulator, embedded broker or demo: see .dockerignore).
RUN pip install --no-cache-dir -c constraints.txt . \
    && bridge schemas --check > /dev/null


FROM ${PYTHON_IMAGE} AS runtime

ARG PYTHON_IMAGE
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown

LABEL org.opencontainers.image.title="icws-bridge" \
      org.opencontainers.image.description="Bridge between Genesys PureConnect ICWS and Kafka (CloudEvents)" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="Proprietary" \
      org.opencontainers.image.base.name="${PYTHON_IMAGE}"

# A fixed numeric user and group, matching the chart's runAsUser/runAsGroup/fsGroup, with no
# home directory and no shell.
RUN groupadd --system --gid 10001 bridge \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin bridge

COPY --from=build /opt/venv /opt/venv

# Read-only root filesystem: no .pyc writes, unbuffered logs, temporary files only in /tmp.
# The settings file and the secrets directory are where the chart mounts them; both are optional
# for `docker run` (environment variables BRIDGE_... work alone).
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONFAULTHANDLER=1 \
    TMPDIR=/tmp \
    BRIDGE_CONFIG_FILE=/etc/icws-bridge/bridge.yaml \
    BRIDGE_HEALTH__PORT=8080

# The only writable place, should anything write relative to the working directory.
WORKDIR /tmp
USER 10001:10001

# /livez, /readyz and /metrics.
EXPOSE 8080

# Liveness only (it never depends on ICWS or Kafka), with the standard library: there is no curl.
# urlopen raises on any non-2xx answer or timeout, which makes python exit non-zero.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/livez' % os.environ.get('BRIDGE_HEALTH__PORT', '8080'), timeout=4)"]

# SIGTERM starts the orderly shutdown: flush to Kafka (up to 20 s), unsubscribe and log out of
# ICWS (up to 5 s). Give `docker stop` -t 40, as the chart's terminationGracePeriodSeconds does.
STOPSIGNAL SIGTERM
ENTRYPOINT ["bridge"]
CMD ["run"]
