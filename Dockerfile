# Tenantry API image: `docker compose up` uses it for the one-shot `migrate` service and the `api`.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    # Import `app` from /app, not from site-packages: the CLI finds pyproject.toml ([tool.alembic])
    # and alembic/ next to the package (app.core.config.ROOT), and those live only in /app.
    PYTHONPATH=/app \
    # Production-safe by default: prod refuses the public default SECRET_KEY, a short
    # PLATFORM_API_KEY and the embedded database, with one line saying which (issue #12).
    ENVIRONMENT=prod

WORKDIR /app

# Dependencies first, in their own layer: rebuilt only when pyproject.toml changes.
# (A placeholder package lets `pip install .` resolve them before the source is copied.)
COPY pyproject.toml README.md ./
RUN mkdir app && touch app/__init__.py \
    && pip install . \
    && rm -rf app build ./*.egg-info

COPY app ./app
COPY alembic ./alembic
COPY scripts ./scripts
# --no-deps: only the project itself (and its `tenantry` console script) changes here.
RUN pip install --no-deps . && rm -rf build ./*.egg-info

# PostgreSQL-style least privilege for the process too: no root, nothing writable in /app.
RUN useradd --system --uid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin tenantry
USER tenantry

EXPOSE 8000
# Readiness = database reachable and RLS safe (the start-up guard's checks); see compose.yaml.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=4).status != 200)"]

# DATABASE_URL and MIGRATION_DATABASE_URL must be set (no embedded PostgreSQL in a container);
# `serve` applies pending migrations (as the owner role) before it starts the workers.
CMD ["tenantry", "serve", "--host", "0.0.0.0", "--port", "8000"]
