"""Live delivery under load: 1,000 SSE clients of one API process, 2,000 symbols at 1 Hz.

One API process (uvicorn, `api.main.create_app`, its own chdb) follows the embedded
broker (Tansu). A publisher in this process produces a RankRow for each of `--symbols`
symbols once a second to md.ranks.v1, every row of a second stamped with the wall-clock
time it was published (`time_ms`). `--clients` SSE clients of `/api/v1/stream/ranks`,
spread over `--client-procs` processes of raw asyncio sockets, follow one of a few
filters each (sorted top-N boards); `--slow` of them read slowly (a 4 KiB receive buffer,
4 KiB a second), so the server sees them fall behind.

For each snapshot or diff a fast client receives it takes `received - as_of_ms` (the
newest publish time the update includes) as the delivered-update latency, after a
warm-up. It prints p50/p99/max of that latency for the fast clients, what the slow ones
lost and how often they were cut off (a queue of `--client-queue` updates, 16 by default,
makes them lose some within a short run), and the API process's CPU (from /proc, in cores)
and RSS. Targets: p99 <= 250 ms from publish to client, < 1 core. Nothing is asserted.

    .venv/bin/python bench/live.py [--symbols 2000 --clients 1000 --seconds 30]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import msgspec
from confluent_kafka import Producer

from runtime.broker import EmbeddedBroker
from runtime.figures import percentile
from runtime.kafka import ensure_topics, producer_config
from schemas import topics
from schemas.ranks import RankRow, encode_rank

FILTERS = (
    "sort=-change_pct_5m&limit=50",
    "sort=-quote_volume_24h&limit=100",
    "market=spot&min_change_pct_1h=0&sort=-rvol_5m&limit=50",
    "max_rsi_14=40&sort=rsi_14&limit=100",
)
"""The boards the clients follow (each client one of them, round robin)."""

SLOW_READ = 4096
"""Bytes a slow client reads per second (and its receive buffer)."""

CLK_TCK = os.sysconf("SC_CLK_TCK")


class _Update(msgspec.Struct):
    as_of_ms: int | None = None


# -- the API process ---------------------------------------------------------------------


def serve(bootstrap: str, port: int, data_dir: str, client_queue: int) -> None:
    """Run the API on `port` until killed (the child process)."""
    import uvicorn

    from api.main import create_app
    from api.server import Server
    from api.settings import ApiSettings
    from runtime.clickhouse import connect
    from runtime.migrate import migrate
    from runtime.process import tune_for_streaming
    from runtime.settings import KafkaSettings
    from tickscan.settings import Settings

    tune_for_streaming()  # as `tickscan api` does
    settings = Settings(
        data_dir=Path(data_dir),
        kafka=KafkaSettings(bootstrap=bootstrap),
        api=ApiSettings(client_queue=client_queue),
    )
    client = connect(settings.clickhouse_dsn())
    migrate(client, settings.clickhouse.database)
    client.close()
    # Accepted sockets inherit the listener's send buffer. A fixed 256 KiB (instead of
    # Linux's autotuning up to 4 MiB) is what a slow reader on a real network leaves
    # room for; with 4 MiB of loopback buffer, minutes of updates would vanish into the
    # kernel before the server noticed a slow client.
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 256 * 1024)
    listener.bind(("127.0.0.1", port))
    config = uvicorn.Config(create_app(settings), log_level="warning")
    Server(config).run(sockets=[listener])


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_mb(pid: int) -> float:
    """Resident set size of a process, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


# -- the publisher -----------------------------------------------------------------------


def publish(bootstrap: str, symbols: int, stop: threading.Event) -> None:
    """Produce one RankRow per symbol at the start of each wall-clock second."""
    # A second's rows go out in one request when flush() ends the linger: with the
    # default 10 ms linger the produce loop (~10 ms) split them in two, the second part
    # a broker round trip (~100 ms on Tansu) behind the first.
    producer = Producer(producer_config(bootstrap, **{"linger.ms": 200}))
    rng = random.Random(1)
    names = [(f"S{i:04d}USDT", "spot" if i % 2 else "usdm") for i in range(symbols)]
    prices = [rng.uniform(0.01, 50_000) for _ in names]
    while not stop.is_set():
        time.sleep(1 - time.time() % 1)
        metrics = []
        for i in range(symbols):
            prices[i] *= 1 + rng.gauss(0, 0.001)
            metrics.append(
                (
                    prices[i],
                    rng.gauss(0, 2),
                    rng.gauss(0, 4),
                    rng.uniform(1e4, 1e9),
                    rng.uniform(0, 5),
                    rng.uniform(0, 100),
                )
            )
        # Stamped as they go out: the latency counts from the publish, not the drawing.
        now = time.time_ns() // 1_000_000
        for (symbol, market), (price, c5, c1h, qv, rvol, rsi) in zip(names, metrics, strict=True):
            row = RankRow(
                "binance",
                market,  # type: ignore[arg-type]
                symbol,
                now,
                price,
                change_pct_5m=c5,
                change_pct_1h=c1h,
                quote_volume_24h=qv,
                rvol_5m=rvol,
                rsi_14=rsi,
            )
            producer.produce(topics.RANKS, encode_rank(row), f"binance:{market}:{symbol}")
        producer.flush(5)


# -- the clients -------------------------------------------------------------------------


async def follow(
    port: int, path: str, slow: bool, until: float, measure_from: float, out: dict[str, Any]
) -> None:
    """One SSE client, reconnecting when the server cuts it off, until `until`."""
    decode = msgspec.json.Decoder(_Update).decode
    loop = asyncio.get_running_loop()
    while time.time() < until:
        sock = socket.socket()
        if slow:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SLOW_READ)
        sock.setblocking(False)
        await loop.sock_connect(sock, ("127.0.0.1", port))
        # A slow reader's stream buffers no more than it reads (it stops reading the
        # socket beyond twice its limit), so the slowness reaches TCP and the server.
        limit = SLOW_READ if slow else 1 << 22
        reader, writer = await asyncio.open_connection(sock=sock, limit=limit)
        # The body comes in chunks, each of whole events: splitting on the blank line
        # that ends an event reads them, the chunk-size lines fall in the gaps.
        request = f"GET {path} HTTP/1.1\r\nHost: bench\r\nAccept: text/event-stream\r\n\r\n"
        writer.write(request.encode())
        head = await reader.readuntil(b"\r\n\r\n")
        if b" 200 " not in head.split(b"\r\n", 1)[0]:
            out["refused"] += 1
            writer.close()
            await asyncio.sleep(1)
            continue
        buffer = b""
        while time.time() < until:
            if slow:
                await asyncio.sleep(1)
                chunk = await reader.read(SLOW_READ)
            else:
                chunk = await reader.read(1 << 20)
            if not chunk:
                out["cut"] += 1
                break
            received = time.time() * 1000
            buffer += chunk
            *frames, buffer = buffer.split(b"\r\n\r\n")
            for frame in frames:
                event, _, data = frame.partition(b"\r\ndata: ")
                kind = event.rsplit(b"event: ", 1)[-1]
                if kind in (b"diff", b"snapshot"):
                    out[kind.decode() + "s"] += 1
                    as_of = decode(data).as_of_ms
                    if not slow and as_of is not None and received / 1000 >= measure_from:
                        out["latency_ms"].append(received - as_of)
                elif kind == b"dropped":
                    out["dropped"] += json.loads(data)["count"]
        writer.close()


def clients(port: int, count: int, slow: int, seconds: float, warmup: float) -> None:
    """Run `count` clients (the first `slow` of them slow); print their figures as JSON."""

    async def run() -> list[dict[str, Any]]:
        start = time.time()
        results = [
            {
                "slow": i < slow,
                "latency_ms": [],
                "diffs": 0,
                "snapshots": 0,
                "dropped": 0,
                "cut": 0,
                "refused": 0,
            }
            for i in range(count)
        ]
        await asyncio.gather(
            *(
                follow(
                    port,
                    "/api/v1/stream/ranks?" + FILTERS[i % len(FILTERS)],
                    result["slow"],
                    start + warmup + seconds,
                    start + warmup,
                    result,
                )
                for i, result in enumerate(results)
            )
        )
        return results

    print(json.dumps(asyncio.run(run())))


# -- the run -----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=2_000)
    parser.add_argument("--clients", type=int, default=1_000)
    parser.add_argument("--slow", type=float, default=0.10, help="share of slow clients")
    parser.add_argument("--client-procs", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=30.0, help="measured time")
    parser.add_argument("--warmup", type=float, default=10.0)
    parser.add_argument(
        "--client-queue",
        type=int,
        default=16,
        help="updates queued per client (the API's default is 64; fewer make the slow "
        "clients lose updates within a short run)",
    )
    parser.add_argument("--role", choices=("main", "serve", "clients"), default="main")
    parser.add_argument("--bootstrap", default="")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--count", type=int, default=0)
    parser.add_argument("--slow-count", type=int, default=0)
    parser.add_argument("--data-dir", default="")
    args = parser.parse_args()
    if args.role == "serve":
        serve(args.bootstrap, args.port, args.data_dir, args.client_queue)
        return
    if args.role == "clients":
        clients(args.port, args.count, args.slow_count, args.seconds, args.warmup)
        return

    me = [sys.executable, __file__]
    with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker(Path(tmp) / "tansu") as broker:
        ensure_topics(broker.bootstrap, [topics.RANKS, topics.SIGNALS, topics.CANDLES], 6)
        port = free_port()
        api = subprocess.Popen(
            [
                *me,
                "--role",
                "serve",
                "--bootstrap",
                broker.bootstrap,
                "--port",
                str(port),
                "--data-dir",
                tmp,
                "--client-queue",
                str(args.client_queue),
            ]
        )
        stop = threading.Event()
        publisher = threading.Thread(target=publish, args=(broker.bootstrap, args.symbols, stop))
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/api/v1/health").json()["live"]:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline or api.poll() is not None:
                    raise SystemExit("the API did not come up")
                time.sleep(0.2)
            publisher.start()
            time.sleep(2)  # the board fills before the clients connect
            per_proc = args.clients // args.client_procs
            slow_per_proc = round(per_proc * args.slow)
            procs = [
                subprocess.Popen(
                    [
                        *me,
                        "--role",
                        "clients",
                        "--port",
                        str(port),
                        "--count",
                        str(per_proc),
                        "--slow-count",
                        str(slow_per_proc),
                        "--seconds",
                        str(args.seconds),
                        "--warmup",
                        str(args.warmup),
                    ],
                    stdout=subprocess.PIPE,
                )
                for _ in range(args.client_procs)
            ]
            time.sleep(args.warmup)
            cpu0, wall0 = cpu_seconds(api.pid), time.monotonic()
            rss_peak = 0.0
            while any(p.poll() is None for p in procs) and time.monotonic() - wall0 < args.seconds:
                rss_peak = max(rss_peak, rss_mb(api.pid))
                time.sleep(1)
            cores = (cpu_seconds(api.pid) - cpu0) / (time.monotonic() - wall0)
            rss_end = rss_mb(api.pid)
            results = [r for p in procs for r in json.loads(p.communicate()[0])]
            metrics = httpx.get(f"http://127.0.0.1:{port}/metrics").text
        finally:
            stop.set()
            api.terminate()
            api.wait(10)
            if publisher.is_alive():
                publisher.join(10)
    report(args, results, cores, rss_peak, rss_end, metrics)


def report(
    args: argparse.Namespace,
    results: list[dict[str, Any]],
    cores: float,
    rss_peak: float,
    rss_end: float,
    metrics: str,
) -> None:
    fast = [r for r in results if not r["slow"]]
    slow = [r for r in results if r["slow"]]
    latencies = [x for r in fast for x in r["latency_ms"]]
    print(
        f"{args.symbols} symbols at 1 Hz, {len(results)} SSE clients ({len(slow)} slow), "
        f"{len(FILTERS)} filters, {args.seconds:.0f} s measured after {args.warmup:.0f} s"
    )
    print(
        f"fast clients: {len(latencies)} updates, latency publish->client "
        f"p50 {percentile(latencies, 0.5):.0f} ms, p99 {percentile(latencies, 0.99):.0f} ms, "
        f"max {max(latencies, default=float('nan')):.0f} ms (target p99 <= 250 ms); "
        f"lost {sum(r['dropped'] for r in fast)}, cut off {sum(r['cut'] for r in fast)}, "
        f"refused {sum(r['refused'] for r in fast)}"
    )
    print(
        f"slow clients read {sum(r['diffs'] for r in slow)} diffs and "
        f"{sum(r['snapshots'] for r in slow)} snapshots (their backlog is still in the "
        "socket buffers when the run ends; the server's counts of what they lost and how "
        "many it cut off are below)"
    )
    print(
        f"API process: {cores:.2f} cores (target < 1), RSS {rss_end:.0f} MB "
        f"(peak {rss_peak:.0f} MB)"
    )
    wanted = (
        "tickscan_live_board_evaluations_total",
        "tickscan_live_queue_drops_total",
        "tickscan_live_evictions_total",
        "tickscan_live_board_diff_rows_total",
        "tickscan_live_board_diffs_total",
        "tickscan_live_board_evaluation_seconds_total",
    )
    for line in metrics.splitlines():
        if line.startswith(wanted):
            print("  " + line)
    p99 = percentile(latencies, 0.99)
    print(
        json.dumps(
            {
                "latency_p50_ms": round(percentile(latencies, 0.5)),
                "latency_p99_ms": round(p99),
                "p99_ratio_to_target": round(p99 / 250, 2),
                "cores": round(cores, 2),
                "rss_mb": round(rss_end),
            }
        )
    )


if __name__ == "__main__":
    main()
