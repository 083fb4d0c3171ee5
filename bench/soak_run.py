"""`tickscan run --source sim` soak: do its RSS and CPU, and the embedded broker's, stay flat?

Starts `python -m tickscan run --source sim` (2,000 trades/s over 200 symbols by default)
on a fresh data directory, as `make run` would, and every `--every-s` seconds (10) samples:

- the RSS (``/proc/PID/statm``) and CPU (``/proc/PID/stat`` utime + stime, in cores over
  the interval) of the tickscan process and of its broker child (Tansu);
- the records the broker holds: the sum over every topic's partitions of high watermark
  minus log start offset (low watermark), read with a consumer of our own.

When the broker reaches `TICKSCAN_KAFKA__EMBEDDED_MAX_MB` (`--embedded-max-mb`), `tickscan
run` replaces it with a fresh one; the soak follows the new broker and reports when.

It prints one table row per sample, then for each process the RSS at the end of the
warm-up (`--warmup-min`, left out of the slopes: caches, the allocator and the signals
flow's rings fill up) and at the end, the least-squares slope of RSS in MB/hour, the mean
CPU of the first and last quarter of the measured span and its slope in cores/hour.
At the end it stops tickscan with SIGINT (as Ctrl-C does) and reports its exit code.

Not for CI: a 2-hour run (the default) is::

    nohup .venv/bin/python bench/soak_run.py 120 > /tmp/soak_run.log 2>&1 &

Last line, JSON:
{"minutes": M, "rate": .., "tickscan": {"rss_quarter_means_mb",
 "rss_slope_second_half_mb_per_h", "rss_start_mb", "rss_end_mb", "rss_max_mb",
 "rss_slope_mb_per_h", "cpu_first_cores", "cpu_last_cores", "cpu_slope_cores_per_h"},
 "broker": {...same...}, "broker_records_start": .., "broker_records_end": ..,
 "broker_records_max": .., "exit_code": ..}
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, KafkaException, TopicPartition

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from runtime.kafka import consumer_config  # noqa: E402

_PAGE = os.sysconf("SC_PAGE_SIZE")
_TICKS = os.sysconf("SC_CLK_TCK")
_KAFKA_LINE = re.compile(r"^\s*Kafka\s+(\S+)")
_FRESH_BROKER = re.compile(r"pipeline running again on a fresh embedded broker at (\S+)")


@dataclass
class Proc:
    """Cumulative CPU and current RSS of one process, read from /proc."""

    pid: int
    cpu_s: float = 0.0
    rss_mb: float = 0.0

    def read(self) -> bool:
        """Refresh; False once the process is gone."""
        try:
            stat = Path(f"/proc/{self.pid}/stat").read_text()
            statm = Path(f"/proc/{self.pid}/statm").read_text()
        except OSError:
            return False
        # Fields after the command name (which may hold spaces) start at index 2.
        fields = stat[stat.rindex(")") + 2 :].split()
        self.cpu_s = (int(fields[11]) + int(fields[12])) / _TICKS
        self.rss_mb = int(statm.split()[1]) * _PAGE / 1e6
        return True


@dataclass
class Series:
    """Samples of one process: (elapsed s, RSS MB, cores over the interval before)."""

    t: list[float] = field(default_factory=list)
    rss: list[float] = field(default_factory=list)
    cores: list[float] = field(default_factory=list)


def find_child(parent: int, comm: str) -> int | None:
    """The pid of a child of `parent` whose command name is `comm`."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        if ppid == parent and name == comm:
            return int(entry.name)
    return None


def slope(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Least-squares slope of ys against xs (0 for fewer than two points)."""
    n = len(xs)
    if n < 2:
        return 0.0
    mx, my = sum(xs) / n, sum(ys) / n
    var = sum((x - mx) ** 2 for x in xs)
    if var == 0:
        return 0.0
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var


def summary(series: Series, warmup_s: float) -> dict[str, float]:
    """RSS and CPU figures of the samples after the warm-up."""
    kept = [i for i, t in enumerate(series.t) if t >= warmup_s] or list(range(len(series.t)))
    if not kept:
        return {}
    hours = [series.t[i] / 3600 for i in kept]
    rss = [series.rss[i] for i in kept]
    cores = [series.cores[i] for i in kept]
    quarter = max(1, len(kept) // 4)
    half = len(kept) // 2
    return {
        # A bound being reached (caches, buffers) slows growth; a leak does not.
        "rss_quarter_means_mb": [
            round(sum(part) / len(part), 1)
            for part in (rss[i * quarter : (i + 1) * quarter] for i in range(4))
            if part
        ],
        "rss_slope_second_half_mb_per_h": round(slope(hours[half:], rss[half:]), 1),
        "rss_start_mb": round(rss[0], 1),
        "rss_end_mb": round(rss[-1], 1),
        "rss_max_mb": round(max(rss), 1),
        "rss_slope_mb_per_h": round(slope(hours, rss), 1),
        "cpu_first_cores": round(sum(cores[:quarter]) / quarter, 3),
        "cpu_last_cores": round(sum(cores[-quarter:]) / quarter, 3),
        "cpu_slope_cores_per_h": round(slope(hours, cores), 3),
    }


class BrokerRecords:
    """Records the broker holds: sum of high minus low watermark over every partition."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self._consumer = Consumer(consumer_config(bootstrap))

    def count(self) -> int | None:
        """The sum, or None when the broker does not answer."""
        try:
            metadata = self._consumer.list_topics(timeout=5)
            total = 0
            for name, topic in metadata.topics.items():
                for partition in topic.partitions:
                    low, high = self._consumer.get_watermark_offsets(
                        TopicPartition(name, partition), timeout=5
                    )
                    total += max(0, high - max(low, 0))
            return total
        except KafkaException:
            return None

    def close(self) -> None:
        """Close the consumer."""
        self._consumer.close()


def main() -> None:
    """Run the soak and print the table, the figures, then one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("minutes", type=float, nargs="?", default=120.0)
    parser.add_argument("--every-s", type=float, default=10.0)
    parser.add_argument("--warmup-min", type=float, default=3.0)
    parser.add_argument("--rate", type=float, default=2_000.0)
    parser.add_argument("--symbols", type=int, default=200)
    parser.add_argument("--port", type=int, default=8840, help="API port of the run")
    parser.add_argument("--keep", action="store_true", help="keep the data directory")
    parser.add_argument(
        "--embedded-max-mb",
        type=int,
        default=None,
        help="TICKSCAN_KAFKA__EMBEDDED_MAX_MB of the run (default: the setting's own)",
    )
    args = parser.parse_args()

    data_dir = Path(tempfile.mkdtemp(prefix="tickscan-soak-"))
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "TICKSCAN_DATA_DIR": str(data_dir),
        "TICKSCAN_API__PORT": str(args.port),
    }
    for name in ("TICKSCAN_KAFKA__BOOTSTRAP", "TICKSCAN_CLICKHOUSE__DSN"):
        env.pop(name, None)
    if args.embedded_max_mb is not None:
        env["TICKSCAN_KAFKA__EMBEDDED_MAX_MB"] = str(args.embedded_max_mb)
    command = [
        sys.executable, "-m", "tickscan", "run", "--source", "sim",
        "--rate", str(args.rate), "--symbols", str(args.symbols),
    ]  # fmt: skip
    log_path = data_dir / "run.log"
    print(f"data dir {data_dir}; log {log_path}", flush=True)
    log_file = log_path.open("wb")
    child = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=log_file)
    bootstrap: list[str] = []
    ready = threading.Event()

    def read_stdout() -> None:
        assert child.stdout is not None
        for raw in child.stdout:
            log_file.write(raw)
            match = _KAFKA_LINE.match(raw.decode(errors="replace"))
            if match and not bootstrap:
                bootstrap.append(match.group(1))
                ready.set()
        ready.set()

    reader = threading.Thread(target=read_stdout, daemon=True)
    reader.start()
    start = time.monotonic()
    if not ready.wait(120) or not bootstrap:
        child.kill()
        raise SystemExit(f"tickscan run did not start; see {log_path}")
    broker_pid = find_child(child.pid, "tansu")
    if broker_pid is None:
        child.kill()
        raise SystemExit("no tansu child of tickscan run")
    print(f"tickscan pid {child.pid}, broker pid {broker_pid} at {bootstrap[0]}", flush=True)

    procs = {"tickscan": Proc(child.pid), "broker": Proc(broker_pid)}
    series = {name: Series() for name in procs}
    for proc in procs.values():
        proc.read()
    last = {name: (time.monotonic(), proc.cpu_s) for name, proc in procs.items()}
    records = BrokerRecords(bootstrap[0])
    record_counts: list[tuple[float, int]] = []
    rotations: list[float] = []
    print(
        f"{'min':>6} {'tickscan MB':>12} {'cores':>6} {'broker MB':>10} {'cores':>6} "
        f"{'broker records':>15}",
        flush=True,
    )
    deadline = start + args.minutes * 60
    alive = True
    try:
        while alive and time.monotonic() < deadline:
            time.sleep(max(0.0, args.every_s - (time.monotonic() - start) % args.every_s))
            now = time.monotonic()
            # At its memory bound `tickscan run` replaces its broker: follow the new one.
            pid = find_child(child.pid, "tansu")
            if pid is not None and pid != procs["broker"].pid:
                rotations.append(round((now - start) / 60, 1))
                procs["broker"] = Proc(pid)
                last["broker"] = (now - args.every_s, 0.0)
            # The log names the new broker once the pipeline runs on it, a few seconds
            # after its process started: switch when it does.
            fresh = _FRESH_BROKER.findall(log_path.read_text(errors="replace"))
            if fresh and fresh[-1] != records.bootstrap:
                records.close()
                records = BrokerRecords(fresh[-1])
            row: dict[str, tuple[float, float]] = {}
            for name, proc in procs.items():
                if not proc.read():
                    alive = False
                    break
                t0, cpu0 = last[name]
                cores = (proc.cpu_s - cpu0) / (now - t0)
                last[name] = (now, proc.cpu_s)
                elapsed = now - start
                series[name].t.append(elapsed)
                series[name].rss.append(proc.rss_mb)
                series[name].cores.append(cores)
                row[name] = (proc.rss_mb, cores)
            if not alive:
                break
            held = records.count()
            if held is not None:
                record_counts.append((now - start, held))
            print(
                f"{(now - start) / 60:6.1f} {row['tickscan'][0]:12.1f} {row['tickscan'][1]:6.2f} "
                f"{row['broker'][0]:10.1f} {row['broker'][1]:6.2f} "
                f"{held if held is not None else '-':>15}",
                flush=True,
            )
    finally:
        records.close()
        child.send_signal(signal.SIGINT)
        try:
            exit_code: int | None = child.wait(90)
        except subprocess.TimeoutExpired:
            child.kill()
            exit_code = child.wait()
        reader.join(5)
        log_file.close()

    warmup_s = args.warmup_min * 60
    result: dict[str, Any] = {
        "minutes": round((time.monotonic() - start) / 60, 1),
        "rate": args.rate,
        "symbols": args.symbols,
        "warmup_min": args.warmup_min,
    }
    for name in procs:
        result[name] = summary(series[name], warmup_s)
        figures = result[name]
        if figures:
            print(
                f"{name}: RSS {figures['rss_start_mb']:.0f} MB after warm-up -> "
                f"{figures['rss_end_mb']:.0f} MB at the end (max {figures['rss_max_mb']:.0f}), "
                f"slope {figures['rss_slope_mb_per_h']:+.1f} MB/h "
                f"({figures['rss_slope_second_half_mb_per_h']:+.1f} MB/h over the second half; "
                f"quarter means {figures['rss_quarter_means_mb']}); CPU "
                f"{figures['cpu_first_cores']:.2f} -> {figures['cpu_last_cores']:.2f} cores "
                f"(first/last quarter), slope {figures['cpu_slope_cores_per_h']:+.3f} cores/h"
            )
    kept = [n for t, n in record_counts if t >= warmup_s] or [n for _, n in record_counts]
    if kept:
        result["broker_records_start"] = kept[0]
        result["broker_records_end"] = kept[-1]
        result["broker_records_max"] = max(kept)
        print(
            f"broker holds {kept[0]:,} records after warm-up, {kept[-1]:,} at the end "
            f"(max {max(kept):,})"
        )
    result["broker_rotations_at_min"] = rotations
    print(f"broker replaced {len(rotations)} times, at minutes {rotations}")
    result["exit_code"] = exit_code
    print(f"tickscan run exited with code {exit_code}; log {log_path}")
    if not args.keep and exit_code == 0:
        shutil.rmtree(data_dir, ignore_errors=True)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
