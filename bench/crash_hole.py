"""The hole a `kill -9` of `tickscan run` leaves in the stored candles, against the downtime.

Runs `tickscan run --source sim` on a fresh data directory, kills it with SIGKILL in the
middle of a minute, starts it again on the same directory, lets it run until the crash
minute and the next one have closed, stops it cleanly and reads chDB:

- the market's stored trades per second (the sum of `count` over every symbol's 1s
  candles): the last second holding trades before the kill, the first after the restart,
  and the hole between them; the simulated market prints about `--rate` trades in every
  second it runs and none while the process is down, so the downtime is from the kill to
  the first trade after the restart, and the hole beyond it is what the crash lost;
- the seconds before the kill stored with fewer than half their trades (partly lost);
- per symbol, the gap between its last real 1s candle before the kill and its first
  after (quiet symbols trade every few seconds only, so this includes their own pauses);
- the 1m candles (crash minute included) missing or unlike the roll-up of their stored
  non-flat 1s candles.

    .venv/bin/python bench/crash_hole.py [--symbols 200] [--rate 2000] [--down 5]

Last line: a JSON object of the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from runtime.clickhouse import connect
from tests.integration.candle_crash import UNLIKE
from tests.integration.sim_run import sim_run_command

BANNER = "tickscan is running"

SECONDS = """
SELECT toUnixTimestamp64Milli(open_time) AS t, sum(count)
FROM {db:Identifier}.candles_1s FINAL
WHERE exchange = 'sim' AND count > 0
GROUP BY t ORDER BY t
"""

HOLES = """
WITH toUnixTimestamp64Milli(open_time) AS t
SELECT symbol,
       maxIf(t, t < {kill:Int64}) AS last_before,
       minIf(t, t >= {kill:Int64}) AS first_after
FROM {db:Identifier}.candles_1s FINAL
WHERE exchange = 'sim' AND count > 0
GROUP BY symbol
"""


class Platform:
    """One `tickscan run --source sim` process, its output watched for the banner."""

    def __init__(self, env: dict[str, str], symbols: int, rate: float, log: Path) -> None:
        self.started = time.time()
        self.ready: float | None = None
        self._log = log.open("ab")
        self.process = subprocess.Popen(
            sim_run_command(symbols, rate),
            env=env,
            stdout=subprocess.PIPE,
            stderr=self._log,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._log.write(line)
            if self.ready is None and BANNER.encode() in line:
                self.ready = time.time()

    def wait_ready(self, timeout: float) -> float:
        deadline = time.monotonic() + timeout
        while self.ready is None:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"tickscan run did not start (see {self._log.name})")
            time.sleep(0.05)
        return self.ready

    def kill(self) -> float:
        self.process.send_signal(signal.SIGKILL)
        at = time.time()
        self.process.wait(30)
        return at

    def stop(self) -> None:
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(90)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(30)
        self._reader.join(10)
        self._log.close()


def sleep_until_second_of_minute(second: float) -> None:
    """Sleep until the wall clock is `second` seconds into a minute (mid-minute kills)."""
    now = time.time()
    wait = (second - now % 60) % 60
    time.sleep(wait)


def main() -> None:
    """Crash, restart and measure; print the figures and a JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--symbols", type=int, default=200)
    parser.add_argument("--rate", type=float, default=2_000.0)
    parser.add_argument("--down", type=float, default=5.0, help="seconds between kill and restart")
    parser.add_argument(
        "--warmup", type=float, default=20.0, help="seconds of running before the kill"
    )
    parser.add_argument("--port", type=int, default=8820, help="API port of the platform")
    parser.add_argument(
        "--analyse", type=Path, help="only read the store of an earlier run's data dir"
    )
    args = parser.parse_args()
    if args.analyse is not None:
        timings = json.loads((args.analyse / "timings.json").read_text())
        analyse(args.analyse, **timings)
        return

    data_dir = Path(tempfile.mkdtemp(prefix="crash-hole-"))
    env = {
        **os.environ,
        "TICKSCAN_DATA_DIR": str(data_dir),
        "TICKSCAN_API__PORT": str(args.port),
    }
    log = data_dir / "run.log"
    first = Platform(env, args.symbols, args.rate, log)
    first.wait_ready(120)
    time.sleep(args.warmup)
    sleep_until_second_of_minute(30)
    killed = first.kill()
    time.sleep(args.down)
    second = Platform(env, args.symbols, args.rate, log)
    relaunched = second.started
    ready = second.wait_ready(120)
    # Run until the crash minute and the one after it have closed, with time to store them.
    crash_minute = int(killed) - int(killed) % 60
    time.sleep(max(0.0, crash_minute + 120 + 5 - time.time()))
    second.stop()
    timings = {"killed": killed, "relaunched": relaunched, "ready": ready}
    (data_dir / "timings.json").write_text(json.dumps(timings))
    analyse(data_dir, **timings)


def analyse(data_dir: Path, killed: float, relaunched: float, ready: float) -> None:
    """Read the store of a crashed and restarted run; print the figures and a JSON line."""
    log = data_dir / "run.log"
    crash_minute = int(killed) - int(killed) % 60
    client = connect(f"chdb://{data_dir / 'clickhouse'}")
    try:
        kill_ms = int(killed * 1000)
        per_second = client.query(SECONDS, parameters={"db": "tickscan"}).result_rows
        rows = client.query(HOLES, parameters={"db": "tickscan", "kill": kill_ms}).result_rows
        upto_ms = (crash_minute + 120) * 1000
        # Unlike as the crash tests define it: any field, trade ids included, differs.
        bad = client.query(UNLIKE, parameters={"db": "tickscan", "upto": upto_ms}).result_rows
        crash_bad = [r for r in bad if r[1] == crash_minute * 1000]
    finally:
        client.close()
    traded = {int(t): int(n) for t, n in per_second}
    before = [t for t in traded if t < kill_ms]
    after = [t for t in traded if t >= kill_ms]
    if not before or not after:
        raise SystemExit(f"no trades stored on both sides of the kill (see {log})")
    end_before = max(before) + 1000  # end of the last second holding trades
    back = min(after)  # the restarted market's first second
    typical = statistics.median(traded[t] for t in before[-40:-10])
    # The last full second before the kill and those before it, if any were short.
    last_full = (kill_ms - kill_ms % 1000) - 1000
    short = [
        t for t in range(last_full - 9_000, last_full + 1, 1000) if traded.get(t, 0) < typical / 2
    ]
    spans = [(int(b), int(a)) for _, b, a in rows if b and a and a > b]
    gaps = [(a - b - 1000) / 1000 for b, a in spans]
    figures = {
        "kill_to_relaunch_s": round(relaunched - killed, 2),
        "kill_to_ready_s": round(ready - killed, 2),
        "downtime_s": round((back - kill_ms) / 1000, 2),
        "hole_s": round((back - end_before) / 1000, 2),
        "hole_beyond_downtime_s": round((kill_ms - end_before) / 1000, 2),
        "short_seconds_before_kill": len(short),
        "trades_per_s_before_kill": typical,
        "symbol_gap_median_s": round(statistics.median(gaps), 2),
        "symbol_gap_max_s": round(max(gaps), 2),
        "minutes_unlike_their_1s": len(bad),
        "crash_minute_unlike_its_1s": len(crash_bad),
        "symbols": len(spans),
    }
    print(f"data dir {data_dir} (log {log})")
    print(f"killed at {killed:.3f}, crash minute {crash_minute}")
    print(
        f"kill -> relaunch {figures['kill_to_relaunch_s']} s, -> ready "
        f"{figures['kill_to_ready_s']} s, -> first stored trade again {figures['downtime_s']} s"
    )
    print(
        f"hole in the stored trades: {figures['hole_s']} s, of which "
        f"{figures['hole_beyond_downtime_s']} s before the kill; "
        f"{len(short)} of the 10 s before the kill hold under half of {typical} trades"
    )
    print(
        f"per symbol, last real 1s before the kill -> first after: median "
        f"{figures['symbol_gap_median_s']} s, max {figures['symbol_gap_max_s']} s"
    )
    print(
        f"minutes missing or unlike the roll-up of their 1s: {len(bad)} "
        f"({len(crash_bad)} of {len(spans)} symbols in the crash minute)"
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
