"""Running Relais: what operators watch (see the README's "Operating Relais").

- `health`: readiness checks of the broker, the database and the object store, each with a timeout;
- `metrics`: the Prometheus metrics every service exports, and how the bus feeds them;
- `logs`: text or JSON logs carrying the bus's correlation ids, with no personal data;
- `server`: the ops HTTP endpoints `/healthz`, `/readyz`, `/metrics` (own port, or mounted in a WSGI app);
- `status`: the state of a running stack, for `relais status`.
"""
