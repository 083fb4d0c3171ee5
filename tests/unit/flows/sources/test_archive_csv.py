"""data.binance.vision trade archives: every layout, zipped and plain, read field by field."""

from __future__ import annotations

import gzip
import zipfile
from decimal import Decimal
from pathlib import Path

import pytest

from flows.sources.files import ReadStats, Rejected, read_archive, read_trades
from schemas.trades import Trade

SPOT_TRADES_MS = (
    "3812315235,61751.98000000,0.00100000,61.75198000,1723161599980,False,True\n"
    "3812315236,61751.99000000,0.00016000,9.88031840,1723161599986,True,True\n"
)
# Spot archives switched to µs trade times on 2025-01-01.
SPOT_TRADES_US = (
    "4370000000,93576.00000000,0.00012000,11.22912000,1735689600123456,True,True\n"
    "4370000001,93576.01000000,0.05000000,4678.80050000,1735689600123999,False,True\n"
)
SPOT_AGG_US = (
    "3352000000,93576.00000000,0.00540000,4370000000,4370000004,1735689600123456,true,true\n"
)
USDM_TRADES_HEADER = (
    "id,price,qty,quote_qty,time,is_buyer_maker\n"
    "5266605246,61659.80,0.004,246.63920,1723161599643,true\n"
    "5266605247,61659.80,0.076,4686.14480,1723161599643,false\n"
)
USDM_AGG_NO_HEADER = "2302815133,61659.80,0.080,5266605246,5266605247,1723161599643,false\n"
USDM_AGG_HEADER = (
    "agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,is_buyer_maker\n"
    + USDM_AGG_NO_HEADER
)


def _write(tmp_path: Path, name: str, text: str, how: str) -> Path:
    """Write an archive the way data.binance.vision ships it (zip) or unpacked (plain)."""
    if how == "zip":
        path = tmp_path / name.replace(".csv", ".zip")
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr(name, text)
        return path
    path = tmp_path / name
    path.write_text(text)
    return path


def _read(path: Path, market: str, **kw) -> tuple[list[Trade | Rejected], ReadStats]:
    stats = ReadStats()
    return list(read_trades(path, market=market, stats=stats, **kw)), stats  # type: ignore[arg-type]


@pytest.mark.parametrize("how", ["zip", "plain"])
def test_spot_trades_ms(tmp_path, how):
    path = _write(tmp_path, "BTCUSDT-trades-2024-08-08.csv", SPOT_TRADES_MS, how)
    out, stats = _read(path, "spot")
    assert out == [
        Trade("binance", "spot", "BTCUSDT", 3812315235, Decimal("61751.98000000"),
              Decimal("0.00100000"), 1_723_161_599_980_000, False),
        Trade("binance", "spot", "BTCUSDT", 3812315236, Decimal("61751.99000000"),
              Decimal("0.00016000"), 1_723_161_599_986_000, True),
    ]  # fmt: skip
    assert (stats.lines, stats.trades, stats.rejected, stats.skipped_non_trade) == (2, 2, 0, 0)


@pytest.mark.parametrize("how", ["zip", "plain"])
def test_spot_trades_microseconds_since_2025(tmp_path, how):
    path = _write(tmp_path, "BTCUSDT-trades-2025-01-01.csv", SPOT_TRADES_US, how)
    out, _ = _read(path, "spot")
    assert [(t.trade_id, t.time_us, t.buyer_is_maker) for t in out] == [  # type: ignore[union-attr]
        (4370000000, 1_735_689_600_123_456, True),
        (4370000001, 1_735_689_600_123_999, False),
    ]


def test_spot_month_spanning_the_switch_reads_each_row_by_magnitude(tmp_path):
    path = _write(tmp_path, "BTCUSDT-trades-2024-12.csv", SPOT_TRADES_MS + SPOT_TRADES_US, "plain")
    out, _ = _read(path, "spot")
    assert [t.time_us for t in out] == [  # type: ignore[union-attr]
        1_723_161_599_980_000,
        1_723_161_599_986_000,
        1_735_689_600_123_456,
        1_735_689_600_123_999,
    ]


@pytest.mark.parametrize("how", ["zip", "plain"])
def test_spot_agg_trades(tmp_path, how):
    path = _write(tmp_path, "ETHBTC-aggTrades-2025-01-01.csv", SPOT_AGG_US, how)
    out, _ = _read(path, "spot")
    assert out == [
        Trade("binance", "spot", "ETHBTC", 3352000000, Decimal("93576.00000000"),
              Decimal("0.00540000"), 1_735_689_600_123_456, True, 4370000000, 4370000004),
    ]  # fmt: skip
    assert out[0].count == 5  # type: ignore[union-attr]


@pytest.mark.parametrize("how", ["zip", "plain"])
def test_futures_trades_with_header(tmp_path, how):
    path = _write(tmp_path, "BTCUSDT-trades-2024-08-08.csv", USDM_TRADES_HEADER, how)
    out, stats = _read(path, "usdm")
    assert out == [
        Trade("binance", "usdm", "BTCUSDT", 5266605246, Decimal("61659.80"), Decimal("0.004"),
              1_723_161_599_643_000, True),
        Trade("binance", "usdm", "BTCUSDT", 5266605247, Decimal("61659.80"), Decimal("0.076"),
              1_723_161_599_643_000, False),
    ]  # fmt: skip
    assert stats.skipped == {"header": 1}
    assert stats.lines == stats.trades + stats.skipped_non_trade == 3


@pytest.mark.parametrize("text", [USDM_AGG_HEADER, USDM_AGG_NO_HEADER])
@pytest.mark.parametrize("how", ["zip", "plain"])
def test_futures_agg_trades_with_and_without_header(tmp_path, how, text):
    path = _write(tmp_path, "BTCUSDT-aggTrades-2024-08-08.csv", text, how)
    out, stats = _read(path, "usdm", symbol="BTCUSDT-PERP", exchange="binance-futures")
    assert out == [
        Trade("binance-futures", "usdm", "BTCUSDT-PERP", 2302815133, Decimal("61659.80"),
              Decimal("0.080"), 1_723_161_599_643_000, False, 5266605246, 5266605247),
    ]  # fmt: skip
    assert out[0].count == 2  # type: ignore[union-attr]
    assert stats.trades == 1


def test_zip_is_recognised_by_content_not_name(tmp_path):
    zipped = _write(tmp_path, "BTCUSDT-trades-2024-08-08.csv", SPOT_TRADES_MS, "zip")
    renamed = zipped.rename(tmp_path / "download.bin")
    out = list(read_archive(renamed, market="spot"))
    # The CSV inside still names symbol and kind.
    assert [t.trade_id for t in out] == [3812315235, 3812315236]  # type: ignore[union-attr]


def test_gzipped_csv(tmp_path):
    path = tmp_path / "BTCUSDT-trades-2024-08-08.csv"
    path.write_bytes(gzip.compress(USDM_TRADES_HEADER.encode()))
    out, _ = _read(path, "usdm")
    assert len(out) == 2 and all(isinstance(t, Trade) for t in out)


def test_name_without_symbol_and_kind_is_a_caller_error(tmp_path):
    path = _write(tmp_path, "trades.csv", SPOT_TRADES_MS, "plain")
    with pytest.raises(ValueError, match="cannot tell symbol and kind"):
        list(read_trades(path, market="spot"))


def test_spot_file_read_as_futures_is_rejected_not_misread(tmp_path):
    path = _write(tmp_path, "BTCUSDT-trades-2024-08-08.csv", SPOT_TRADES_MS, "plain")
    out, stats = _read(path, "usdm")
    assert [r.reason for r in out] == ["bad_columns", "bad_columns"]  # type: ignore[union-attr]
    assert stats.rejected == 2
