# The presence server as a container: slim, non-root, dependencies from uv.lock.
#
#   docker build -t presence-server .
#   docker run -p 8765:8765 \
#     -e PRESENCE_DATABASE=postgresql://presence:…@db/presence \
#     -e PRESENCE_REDIS=redis://redis:6379/0 presence-server
#
# Only what the server needs is installed: the desktop app's Qt, keychain and
# notification libraries are left out (see docs/deployment.md).

FROM python:3.11-slim AS build
ENV UV_PYTHON_DOWNLOADS=never \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PROJECT_ENVIRONMENT=/app/.venv
RUN pip install --no-cache-dir "uv>=0.13,<0.14"
WORKDIR /app
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --locked --no-dev --no-install-project \
      --no-install-package pyside6-essentials --no-install-package shiboken6 \
      --no-install-package qasync --no-install-package desktop-notifier \
      --no-install-package dbus-fast --no-install-package bidict \
      --no-install-package keyring --no-install-package secretstorage \
      --no-install-package jeepney --no-install-package cryptography \
      --no-install-package cffi --no-install-package pycparser \
      --no-install-package jaraco-classes --no-install-package jaraco-context \
      --no-install-package jaraco-functools --no-install-package more-itertools \
      --no-install-package backports-tarfile --no-install-package importlib-metadata \
      --no-install-package zipp --no-install-package packaging \
      --no-install-package lazy-importer
COPY presence_protocol presence_protocol
COPY presence_server presence_server
RUN /app/.venv/bin/python -m compileall -q presence_protocol presence_server \
 && printf '#!/bin/sh\nexec /app/.venv/bin/python -m presence_server "$@"\n' \
      > /app/.venv/bin/presence-server \
 && chmod 755 /app/.venv/bin/presence-server

FROM python:3.11-slim
RUN useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin presence
WORKDIR /app
COPY --from=build /app /app
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONPATH=/app \
    PYTHONUNBUFFERED=1 \
    PRESENCE_HOST=0.0.0.0 \
    PRESENCE_PORT=8765 \
    PRESENCE_LOG_FORMAT=json \
    XDG_DATA_HOME=/data
RUN mkdir -p /data && chown presence /data
USER presence
EXPOSE 8765
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PRESENCE_PORT', '8765'), timeout=4)"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["presence-server"]
