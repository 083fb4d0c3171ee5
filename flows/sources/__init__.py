"""Connectors that bring data into flows.

- `binance/`: REST and WebSocket market data within Binance's limits, and the normalisers
  of its messages.
- `files`: WebSocket capture files and data.binance.vision archives as trades
  (`archives`: what an archive's name and rows say); `market_guess`: spot or USDⓈ-M,
  told by their decimals.
- `kafka`: Kafka input in micro-batches.
- `simulator/`: the synthetic market (exchange `sim`).
"""
