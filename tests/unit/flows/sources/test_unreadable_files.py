"""Files that cannot be read to their end: each is one `UnreadableFile` naming the file and
the reason, after the trades read before the fault; never a bare EOFError or BadZipFile."""

from __future__ import annotations

import gzip
import zipfile
from pathlib import Path

import pytest

from flows.sources.files import ReadStats, Rejected, UnreadableFile, read_trades
from schemas.trades import Trade
from tests.shared_data import SHARED_DATA

DATA = SHARED_DATA
CAPTURE = DATA / "binance-um-btcusdt-20240808" / "hftbacktest_usdm_btcusdt_20240808.gz"
KLINES = (
    DATA
    / "binance-um-btcusdt-20240808"
    / "BTCUSDT-1m-2024-08_um_klines_2024-08-08T2350_2024-08-09T0010.csv"
)
USDM_TRADES = (
    "5266605246,61659.80,0.004,246.63920,1723161599643,true\n"
    "5266605247,61659.80,0.076,4686.14480,1723161599643,false\n"
)


def _read(
    path: Path, market: str = "usdm"
) -> tuple[list[Trade | Rejected], ReadStats, UnreadableFile]:
    """Read until the file's fault: what came before it, and the fault."""
    stats, out = ReadStats(), []
    with pytest.raises(UnreadableFile) as caught:
        for item in read_trades(path, market=market, stats=stats):  # type: ignore[arg-type]
            out.append(item)
    assert caught.value.path == path and str(path) in str(caught.value)
    return out, stats, caught.value


def test_a_truncated_gzip_capture_keeps_its_trades_and_says_where_it_ends(tmp_path: Path) -> None:
    cut = tmp_path / "cut.gz"
    cut.write_bytes(CAPTURE.read_bytes()[:200_000])
    out, stats, error = _read(cut)
    assert error.reason == "truncated"
    assert f"after line {stats.lines:,}" in error.detail
    assert stats.trades == len(out) > 0 and all(isinstance(t, Trade) for t in out)


def test_a_truncated_zip_archive_is_corrupt(tmp_path: Path) -> None:
    whole = tmp_path / "whole.zip"
    with zipfile.ZipFile(whole, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("BTCUSDT-trades-2024-08-08.csv", USDM_TRADES * 5_000)
    cut = tmp_path / "BTCUSDT-trades-2024-08-08.zip"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    _, _, error = _read(cut)
    assert error.reason == "corrupt" and "zip" in error.detail


def test_a_damaged_zip_member_is_corrupt_after_its_good_lines(tmp_path: Path) -> None:
    path = tmp_path / "BTCUSDT-trades-2024-08-08.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("BTCUSDT-trades-2024-08-08.csv", USDM_TRADES * 5_000)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # the CRC no longer matches
    path.write_bytes(bytes(data))
    _, _, error = _read(path)
    assert error.reason == "corrupt"


@pytest.mark.parametrize(
    ("content", "detail"),
    [(b"", "empty"), (gzip.compress(b""), "empty once decompressed")],
    ids=["empty", "empty-gzip"],
)
def test_an_empty_file_is_named_empty(tmp_path: Path, content: bytes, detail: str) -> None:
    path = tmp_path / "BTCUSDT-trades-2024-08-08.csv"
    path.write_bytes(content)
    out, _, error = _read(path)
    assert (error.reason, error.detail, out) == ("empty", detail, [])


def test_a_name_that_does_not_say_symbol_and_kind(tmp_path: Path) -> None:
    path = tmp_path / "trades.csv"
    path.write_text(USDM_TRADES)
    _, _, error = _read(path)
    assert error.reason == "unnamed" and "'trades.csv'" in error.detail


def test_a_missing_file(tmp_path: Path) -> None:
    _, _, error = _read(tmp_path / "gone.gz")
    assert error.reason == "missing"


def _rejections(path: Path, market: str) -> list[Rejected]:
    out = list(read_trades(path, market=market))  # type: ignore[arg-type]
    assert out and all(isinstance(r, Rejected) for r in out)
    return out  # type: ignore[return-value]


def test_klines_given_as_agg_trades_are_named_klines(tmp_path: Path) -> None:
    path = tmp_path / "BTCUSDT-aggTrades-2024-08-08.csv"
    path.write_bytes(KLINES.read_bytes())
    details = {r.detail for r in _rejections(path, "usdm")}
    assert details == {
        "12 columns, usdm aggTrades has 7; 12 columns is a klines file's layout, not trades"
    }


def test_usdm_trades_read_as_spot_name_the_layout_they_have(tmp_path: Path) -> None:
    path = tmp_path / "BTCUSDT-trades-2024-08-08.csv"
    path.write_text(USDM_TRADES)
    details = {r.detail for r in _rejections(path, "spot")}
    assert details == {"6 columns, spot trades has 7; 6 columns is the layout of usdm trades"}
