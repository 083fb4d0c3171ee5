"""The HTTP API (FastAPI): history from ClickHouse, live data over SSE and WebSocket, accounts.

- `main`: `create_app` and the lifespan, which opens what each area's `deps.py` hands to
  routes as `Annotated` types; `errors`: the one error envelope and the package's
  exception base; `openapi`, `docs`: the schema and /docs, /redoc without a CDN; `ui`:
  the built UI.
- Guards on every request: `security_headers` (CSP and friends), `body_limit` (413 past a
  route's limit), `origins` (whose pages may use the session cookie on a WebSocket);
  `server`: uvicorn that tells live clients before it shuts down.
- `routes/`: one thin router per area, none importing another; `services/`: what they do,
  without FastAPI; `live/`: one Kafka consumer per process fanned out to clients;
  `accounts/`: users, sessions, sign-in, billing and entitlements.
- `settings`: the API's own settings (`TICKSCAN_API__*`, `TICKSCAN_ACCOUNTS__*`).
"""
