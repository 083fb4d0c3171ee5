"""`tickscan replay` as a user runs it, on bad files: each is named with its reason, the
other files still replay, the exit code says so, and rejected input outlives the run."""

from __future__ import annotations

import gzip
import json
import os
import re
import subprocess
import sys
import zipfile
from decimal import Decimal
from functools import cache
from pathlib import Path

import pytest

from tests.shared_data import SHARED_DATA

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
DATA = SHARED_DATA / "binance-um-btcusdt-20240808"
CAPTURE = DATA / "hftbacktest_usdm_btcusdt_20240808.gz"
KLINES = DATA / "BTCUSDT-1m-2024-08_um_klines_2024-08-08T2350_2024-08-09T0010.csv"
TIMEOUT_S = 300


@cache
def capture_lines() -> tuple[bytes, ...]:
    if not CAPTURE.exists():
        pytest.fail(f"shared data missing: {CAPTURE}")
    with gzip.open(CAPTURE, "rb") as f:
        return tuple(f.readlines())


def trade_events(lines: tuple[bytes, ...] | list[bytes]) -> list[dict[str, object]]:
    """The `@trade` events of capture lines, decoded."""
    return [json.loads(line.split(b" ", 1)[1])["data"] for line in lines if b'"e":"trade"' in line]


def usdm_trades_csv(events: list[dict[str, object]]) -> str:
    """A data.binance.vision USDⓈ-M trades CSV of the given trade events."""
    rows = []
    for e in events:
        quote = Decimal(str(e["p"])) * Decimal(str(e["q"]))
        rows.append(f"{e['t']},{e['p']},{e['q']},{quote},{e['T']},{str(e['m']).lower()}\n")
    return "".join(rows)


def good_capture(tmp_path: Path, name: str = "good.gz") -> tuple[Path, list[int]]:
    """A gzipped slice of the real capture (late in it) and the ids of its trades."""
    lines = capture_lines()[60_000:62_000]
    path = tmp_path / name
    path.write_bytes(gzip.compress(b"".join(lines)))
    ids = [int(str(e["t"])) for e in trade_events(lines)]
    assert ids, "the slice holds trades"
    return path, ids


def replay_cli(data_dir: Path, *args: str | Path) -> subprocess.CompletedProcess[str]:
    """Run `tickscan replay` in its own process with its own broker and ClickHouse."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKSCAN_")}
    env["TICKSCAN_DATA_DIR"] = str(data_dir)
    env["COLUMNS"] = "100"
    done = subprocess.run(
        [sys.executable, "-m", "tickscan", "replay", *map(str, args)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    for crash in ("Traceback", "Aborted", "Fatal Python error"):
        assert crash not in done.stderr + done.stdout, done.stderr[-4000:]
    return done


def query(data_dir: Path, sql: str) -> list[list[object]]:
    """Rows of a query on the replay's ClickHouse, read after the replay has exited."""
    code = (
        "import json, sys\n"
        "from runtime.clickhouse import connect\n"
        "client = connect(sys.argv[1])\n"
        "print(json.dumps(client.query(sys.argv[2]).result_rows, default=str))\n"
        "client.close()\n"
    )
    dsn = f"chdb://{(data_dir / 'clickhouse').resolve()}"
    done = subprocess.run(
        [sys.executable, "-c", code, dsn, sql],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows: list[list[object]] = json.loads(done.stdout.strip().splitlines()[-1])
    return rows


def message_about(output: str, path: Path) -> str:
    """The one line of `output` that names `path` with a reason (not a progress bar)."""
    found = [line for line in output.splitlines() if str(path) in line]
    assert found, f"no line names {path}:\n{output[-3000:]}"
    return found[0]


def stored_trade_ids(data_dir: Path, first: int, last: int) -> int:
    rows = query(
        data_dir,
        f"SELECT count() FROM tickscan.trades FINAL WHERE trade_id BETWEEN {first} AND {last}",
    )
    return int(str(rows[0][0]))


def test_a_truncated_gzip_is_named_and_the_next_file_still_replays(tmp_path: Path) -> None:
    cut = tmp_path / "cut.gz"
    cut.write_bytes(CAPTURE.read_bytes()[:200_000])
    good, ids = good_capture(tmp_path)
    data = tmp_path / "data"
    done = replay_cli(data, "--market", "usdm", cut, good)
    assert done.returncode != 0, done.stdout
    assert "truncated" in message_about(done.stderr, cut).lower()
    assert str(cut) in done.stdout, "the summary names the bad file"
    assert stored_trade_ids(data, ids[0], ids[-1]) == len(ids)


def test_a_csv_with_wrong_columns_fails_and_says_so(tmp_path: Path) -> None:
    bad = tmp_path / "BTCUSDT-trades-2024-08-08.csv"
    bad.write_text(
        "5266605246,61659.80,0.004,1723161599643\n5266605247,61659.80,0.076,1723161599643\n"
    )
    done = replay_cli(tmp_path / "data", "--market", "usdm", bad)
    assert done.returncode != 0, done.stdout
    line = message_about(done.stderr, bad)
    assert "4 columns" in line and "6" in line, line


def test_klines_given_as_agg_trades_are_recognised(tmp_path: Path) -> None:
    bad = tmp_path / "BTCUSDT-aggTrades-2024-08-08.csv"
    bad.write_bytes(KLINES.read_bytes())
    good, ids = good_capture(tmp_path)
    data = tmp_path / "data"
    done = replay_cli(data, "--market", "usdm", bad, good)
    assert done.returncode != 0, done.stdout
    assert "klines" in message_about(done.stderr, bad), done.stderr
    assert stored_trade_ids(data, ids[0], ids[-1]) == len(ids)


def test_an_empty_file_fails_and_says_so(tmp_path: Path) -> None:
    empty = tmp_path / "BTCUSDT-trades-2024-08-08.csv"
    empty.write_bytes(b"")
    done = replay_cli(tmp_path / "data", "--market", "usdm", empty)
    assert done.returncode != 0, done.stdout
    assert "empty" in message_about(done.stderr, empty)


def test_a_file_name_that_says_no_symbol_is_named_without_a_traceback(tmp_path: Path) -> None:
    nameless = tmp_path / "trades.csv"
    nameless.write_text(usdm_trades_csv(trade_events(capture_lines()[:2_000])))
    good, ids = good_capture(tmp_path)
    data = tmp_path / "data"
    done = replay_cli(data, "--market", "usdm", nameless, good)
    assert done.returncode != 0, done.stdout
    assert "name" in message_about(done.stderr, nameless)
    assert stored_trade_ids(data, ids[0], ids[-1]) == len(ids)


def test_a_truncated_zip_is_named_without_a_traceback(tmp_path: Path) -> None:
    whole = tmp_path / "whole.zip"
    with zipfile.ZipFile(whole, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("BTCUSDT-trades-2024-08-08.csv", usdm_trades_csv(trade_events(capture_lines())))
    cut = tmp_path / "BTCUSDT-trades-2024-08-08.zip"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    whole.unlink()
    good, ids = good_capture(tmp_path)
    data = tmp_path / "data"
    done = replay_cli(data, "--market", "usdm", cut, good)
    assert done.returncode != 0, done.stdout
    assert "zip" in message_about(done.stderr, cut).lower()
    assert stored_trade_ids(data, ids[0], ids[-1]) == len(ids)


def test_usdm_data_replayed_as_spot_is_warned_about(tmp_path: Path) -> None:
    good, _ = good_capture(tmp_path)
    done = replay_cli(tmp_path / "data", "--market", "spot", good)
    line = message_about(done.stderr, good)
    assert "usdm" in line and "--market spot" in line, line
    assert "usdm" in done.stdout, "the summary repeats the warning"


def test_rejected_lines_outlive_the_run_in_a_file_and_in_clickhouse(tmp_path: Path) -> None:
    lines = list(capture_lines()[:400])
    marker = f"broken-{os.getpid()}-{tmp_path.name}"
    lines.insert(
        10, f'1723161255088176367 {{"stream":"btcusdt@trade","data":{{"e":"{marker}\n'.encode()
    )
    # A trade the trades table cannot hold (10 decimals): the trade store dead-letters it.
    lines.insert(
        20,
        b'1723161255088176368 {"stream":"btcusdt@trade","data":{"e":"trade","E":1723161256322,'
        b'"T":1723161256322,"s":"BTCUSDT","t":9000000000001,"p":"0.0000000001","q":"1",'
        b'"X":"MARKET","m":false}}\n',
    )
    bad = tmp_path / "bad.capture"
    bad.write_bytes(b"".join(lines))
    data = tmp_path / "data"
    done = replay_cli(data, "--market", "usdm", bad)
    assert done.returncode != 0, done.stdout
    assert "bad.capture:11" in message_about(done.stderr, bad)

    kept = [Path(p) for p in re.findall(r"(/\S+\.jsonl)", done.stdout)]
    assert kept and kept[0].is_file(), done.stdout
    letters = [json.loads(line) for line in kept[0].read_text().splitlines()]
    assert [d["reason"] for d in letters if marker in d["value"]] == ["bad_json"]
    assert any("bad.capture:11" in d["detail"] for d in letters)

    rows = query(data, "SELECT stage, reason, detail, value FROM tickscan.dead_letters")
    assert [r[:2] for r in rows if marker in str(r[3])] == [["ingest", "bad_json"]]
    assert any(r[0] == "trade_store" and r[1] == "unstorable" for r in rows), rows
