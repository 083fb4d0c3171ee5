"""Bad lines become `Rejected` with a reason, and the read goes on past them."""

from __future__ import annotations

import gzip
from pathlib import Path

from flows.sources.files import ReadStats, Rejected, read_trades
from schemas.trades import Trade

GOOD = (
    '{"stream":"btcusdt@trade","data":{"e":"trade","E":1723161256322,"T":1723161256322,'
    '"s":"BTCUSDT","t":%d,"p":"61800.30","q":"0.006","X":"MARKET","m":false}}'
)


def _capture_lines() -> list[str]:
    good = [GOOD % i for i in range(1, 8)]
    return [
        "1723161255088176367 " + good[0],
        "1723161255088176368 " + good[1][:-25],  # truncated mid-message
        "1723161255088176369 " + good[2].replace('"61800.30"', '"61800.3O"'),
        "1723161255088176370 " + good[3].replace(',"T":1723161256322', ""),
        "1723161255088176371 " + good[4].replace('"61800.30"', '"-61800.30"'),
        good[5].replace(" ", ""),  # no receive time at all
        '1723161255088181667 {"stream":"btcusdt@bookTicker","data":{"e":"bookTicker",'
        '"u":5123107840008,"s":"BTCUSDT","b":"61800.20","B":"2.507","a":"61800.30",'
        '"A":"2.504","T":1723161256322,"E":1723161256322}}',
        "1723161255088176372 " + good[6],
    ]


def test_bad_capture_lines_are_rejected_and_reading_continues(tmp_path: Path):
    lines = _capture_lines()
    path = tmp_path / "capture.gz"
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    stats = ReadStats()
    out = list(read_trades(path, market="usdm", stats=stats))

    assert [t.trade_id for t in out if isinstance(t, Trade)] == [1, 7]
    rejected = [r for r in out if isinstance(r, Rejected)]
    assert [(r.source, r.reason) for r in rejected] == [
        (f"{path}:2", "bad_json"),
        (f"{path}:3", "bad_decimal"),
        (f"{path}:4", "missing_field"),
        (f"{path}:5", "invalid_trade"),
        (f"{path}:6", "bad_line"),
    ]
    # The whole line is kept, byte for byte, so the dead letter can be replayed.
    assert [r.raw for r in rejected] == [line.encode() for line in lines[1:6]]
    assert "T" in rejected[2].detail
    assert "price" in rejected[3].detail
    assert (stats.lines, stats.trades, stats.rejected, stats.skipped) == (
        8,
        2,
        5,
        {"bookTicker": 1},
    )


def test_bad_archive_rows_are_rejected_and_reading_continues(tmp_path: Path):
    rows = [
        "5266605240,61659.80,0.004,246.63920,1723161599643,true",
        "5266605241,61659.80,0.0x4,246.63920,1723161599643,true",
        "5266605242,-61659.80,0.004,246.63920,1723161599643,true",
        "5266605243,61659.80,0.004,246.63920,1723161599643,maybe",
        "5266605244,61659.80,0.004,246.63920,17231615996.43,true",
        "5266605245,61659.80,0.004,246.63920",
        "5266605246,61659.80,0.004,246.63920,1723161599643,false",
    ]
    path = tmp_path / "BTCUSDT-trades-2024-08-08.csv"
    path.write_text("\n".join(rows) + "\n")
    stats = ReadStats()
    out = list(read_trades(path, market="usdm", stats=stats))

    assert [t.trade_id for t in out if isinstance(t, Trade)] == [5266605240, 5266605246]
    assert [(r.source, r.reason, r.raw) for r in out if isinstance(r, Rejected)] == [
        (f"{path}:2", "bad_decimal", rows[1].encode()),
        (f"{path}:3", "invalid_trade", rows[2].encode()),
        (f"{path}:4", "bad_bool", rows[3].encode()),
        (f"{path}:5", "bad_int", rows[4].encode()),
        (f"{path}:6", "bad_columns", rows[5].encode()),
    ]
    assert (stats.lines, stats.trades, stats.rejected) == (7, 2, 5)
