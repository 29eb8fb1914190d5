"""Operations: metrics, structured logs, TURN credentials and the admin API.

Nothing here is imported by the core; the server wires these modules in:

- :mod:`parley.ops.metrics` -- Prometheus ``/metrics`` on a per-server registry;
- :mod:`parley.ops.jsonlog` -- one JSON object per log line on request;
- :mod:`parley.ops.turn` -- time-limited TURN credentials (coturn ``use-auth-secret``);
- :mod:`parley.ops.admin` -- ``/api/v1/admin/`` guarded by a bearer token.
"""
