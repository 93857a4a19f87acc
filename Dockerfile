# Résorption — production-like image: the package under gunicorn, configured only by env vars.
#   docker build -t resorption . && docker compose up
FROM python:3.12-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Every dependency ships wheels (psycopg[binary] brings its own libpq): no compiler, no apt.
COPY pyproject.toml README.md ./
COPY plugins ./plugins
RUN pip install . && rm -rf plugins build

# Configuration as data, read at start (see pygeoapi-config.yml, config/, collections/).
COPY pygeoapi-config.yml ./
COPY config ./config
COPY collections ./collections

# An unprivileged user; .local/ receives the generated OpenAPI document.
RUN useradd --system --no-create-home --home-dir /app resorption \
    && mkdir -p /app/.local && chown resorption: /app/.local
USER resorption

# DATABASE_URL and RESORPTION_PUBLIC_URL have no safe default: docker-compose.yml sets them.
ENV WEB_CONCURRENCY=2

EXPOSE 5000

# Ready: the database answers and its schema is the code's (/pret, README « Exploitation »).
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:5000/pret', timeout=4)"]

# gunicorn reads its worker count from WEB_CONCURRENCY by itself.
# The schema is applied by the `migrate` service of docker-compose.yml (resorption db setup).
# config/gunicorn.conf.py: the request line and header limits, French refusals (README « Sécurité »).
# No gunicorn access log: the app writes one JSON line per request (resorption.request_log).
CMD ["gunicorn", "--config", "config/gunicorn.conf.py", "--bind", "0.0.0.0:5000", \
     "--forwarded-allow-ips", "*", "resorption.app:wsgi()"]
