"""Live delivery: one consumer of the live topics per process, fanned out to clients.

`feed` (the consumer) -> `board`, `candles` (forming candles) and `perps` (a followed
perpetual's open interest, funding and liquidations) -> `hub` (bounded per-client
queues); `trading`: paper trading's commands out, its answers, account views and
per-account streams in; `delayed`: the free tier's board; `users`: a user's sessions;
`protocol` and `rate`: the WebSocket's operations and message rate; `deps`: what a
route asks for.
"""
