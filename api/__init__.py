"""HTTP API (FastAPI): history from ClickHouse, live data over SSE and WebSocket."""
