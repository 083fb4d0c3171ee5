"""The symbols writer: TabSeparated rows ClickHouse parses exactly, one insert per write."""

from __future__ import annotations

from decimal import Decimal

from flows.sinks.symbols import SYMBOL_COLUMNS, SymbolWriter, tsv_rows
from schemas.symbols import SymbolInfo
from tests.fakes.clickhouse import RecordingClient

BTC = SymbolInfo(
    "binance", "usdm", "BTCUSDT", "BTC", "USDT", "TRADING", "perpetual",
    Decimal("0.10"), Decimal("1E-8"), 1_645_233_611_962,
    Decimal("0.001"), Decimal("1000"), None, Decimal("5E+0"),
)  # fmt: skip


def test_rows_are_plain_decimals_null_sizes_and_escaped_text() -> None:
    odd = SymbolInfo("binance", "spot", "币安人生USDT", "币安人生", "USDT", "BR\tEAK", "spot")
    assert tsv_rows([BTC, odd]).decode().splitlines() == [
        "binance\tusdm\tBTCUSDT\tBTC\tUSDT\tTRADING\tperpetual\t0.10\t0.00000001\t1645233611962"
        "\t0.001\t1000\t\\N\t5",
        "binance\tspot\t币安人生USDT\t币安人生\tUSDT\tBR\\tEAK\tspot\t\\N\t\\N\t0"
        "\t\\N\t\\N\t\\N\t\\N",
    ]
    assert len(SYMBOL_COLUMNS) == tsv_rows([BTC]).decode().count("\t") + 1


def test_a_write_is_one_insert_into_symbols_now() -> None:
    client = RecordingClient()
    writer = SymbolWriter(lambda: client, "tickscan")
    assert writer.write([BTC, BTC]) == 2
    assert writer.write([]) == 0
    assert client.inserts == [("tickscan.symbols", list(SYMBOL_COLUMNS), tsv_rows([BTC, BTC]))]
