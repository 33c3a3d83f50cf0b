# syntax=docker/dockerfile:1
#
# mcdash container images.
#
#   API / scheduler / migrate image (default, last stage):
#     docker build -t mcdash:dev .
#   Node worker image (adds a Java 21 runtime for the Minecraft JVMs):
#     docker build --target worker -t mcdash-worker:dev .
#
# The same image runs every role; pick it with the command:
#   mcdash api --host 0.0.0.0 --port 8000   (default CMD)
#   mcdash scheduler
#   mcdash migrate
#
# Pin PYTHON_IMAGE / JAVA_IMAGE to digests in production builds.

ARG PYTHON_IMAGE=python:3.12-slim
ARG JAVA_IMAGE=eclipse-temurin:21-jre

# ---------------------------------------------------------------------------
# builder: resolve the locked dependencies into /app/.venv with uv
# ---------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS builder

ARG UV_VERSION=0.13.9
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv

RUN pip install "uv==${UV_VERSION}"

WORKDIR /app

# Dependencies first (only invalidated when the lock changes).
COPY pyproject.toml uv.lock ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-install-project

# Then the project itself. It is installed in editable mode (uv's default), so
# the code stays at /app/app with alembic.ini and migrations/ next to it, which
# is where the CLI looks for them.
COPY README.md alembic.ini ./
COPY migrations/ ./migrations/
COPY app/ ./app/
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev \
    && python -m compileall -q /app/app /app/migrations

# ---------------------------------------------------------------------------
# runtime: API image (also used for the scheduler and migrations)
# ---------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    VIRTUAL_ENV=/app/.venv \
    PATH="/app/.venv/bin:${PATH}" \
    MCDASH_DATA_DIR=/data

RUN groupadd --system --gid 10001 mcdash \
    && useradd --system --uid 10001 --gid 10001 \
        --home-dir /home/mcdash --create-home --shell /usr/sbin/nologin mcdash \
    && mkdir -p /data \
    && chown 10001:10001 /data

WORKDIR /app
# Code and venv stay root-owned (read-only for the service user).
COPY --from=builder /app /app

USER 10001:10001

EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4).status == 200 else 1)"]

CMD ["mcdash", "api", "--host", "0.0.0.0", "--port", "8000"]

# ---------------------------------------------------------------------------
# worker: node worker that supervises Minecraft server JVMs (needs Java 21)
# ---------------------------------------------------------------------------
FROM ${JAVA_IMAGE} AS java

FROM runtime AS worker

ENV JAVA_HOME=/opt/java/openjdk
ENV PATH="${JAVA_HOME}/bin:${PATH}"
COPY --from=java /opt/java/openjdk /opt/java/openjdk
# bubblewrap sandboxes each game server (untrusted code). unshare, mount and setpriv (util-linux,
# already in the base image) give a root worker one account and a private mount per server.
USER root
RUN apt-get update \
    && apt-get install -y --no-install-recommends bubblewrap \
    && rm -rf /var/lib/apt/lists/*
USER 10001:10001
# Fail the build early if the copied JRE cannot run on this base image.
RUN java -version && bwrap --version

# The worker's node agent (MCDASH_NODE_LISTEN, e.g. 0.0.0.0:8765 in compose and k8s) answers
# /v1/health; only the API should reach that port.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["sh", "-c", "l=${MCDASH_NODE_LISTEN:-127.0.0.1:8765}; exec python -c \"import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:${l##*:}/v1/health', timeout=4).status == 200 else 1)\""]
EXPOSE 8765

# Minecraft game ports are allocated from this range on the node.
EXPOSE 25565-25665

# /data/servers holds the Minecraft server directories: mount a persistent volume.
VOLUME ["/data"]

# The node's name is MCDASH_NODE_NAME (default `local`, as for `mcdash worker` anywhere).
CMD ["mcdash", "worker"]

# ---------------------------------------------------------------------------
# api: default target (last stage), identical to runtime
# ---------------------------------------------------------------------------
FROM runtime AS api
