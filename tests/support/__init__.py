"""The suite's one fixture plugin and the helpers every directory shares.

Registered for the whole suite by ``tests/conftest.py`` (``pytest_plugins``),
so no test imports a fixture from another directory's conftest:

* ``services`` — ``require`` (skip locally, fail in CI), PostgreSQL and Redis
  URLs, a private ``redis-server`` process.
* ``servers`` — in-process servers: ``start`` / ``server`` on a SQLite file
  (or the ``database`` a test is parametrized with), ``ServerHandle`` that can
  be stopped and started again on its port.
* ``sessions`` — the server's socket-free ``Session`` on a real hub (SQLite
  file, in-process fan-out and registry, one ``FakeClock``): ``session_hub``,
  ``Wire``, ``Device``.
* ``processes`` — real ``presence-server`` processes: ``ServerProcess``
  (kill -9, SIGTERM, restart on the same port, RSS and CPU), ``spawn``, and
  instance groups on one PostgreSQL + Redis.
* ``qt`` — the qasync loop factory and which tests run on it.
* ``clock`` — a virtual clock whose time moves only when the test says so.
"""
