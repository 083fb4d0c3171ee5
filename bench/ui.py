"""The board in a browser under a whole exchange: 2,000 rows at 1 Hz, main-thread cost.

Starts tickscan (`tickscan run --source sim`, billing off: the live board) on a simulated
market of `--symbols` symbols, opens the board in headless Debian chromium and, for
`--seconds`, records on the page's main thread:

- every task, from a Chrome trace (`toplevel` RunTask events of the renderer's main
  thread): the longest, and how many took over 50 ms, in wall time and in the thread's
  CPU time (on a busy machine the difference is time spent waiting for a core);
- the Long Tasks API's entries (tasks over 50 ms, as the page itself sees them);
- frames, from a requestAnimationFrame loop: a gap over 1.5 frames drops
  `round(gap / frame) - 1` frames, the frame being the median gap (headless chromium's
  begin-frame rate);
- board updates (changes of `board-as-of`), to show the board really was live.

Target: no task over 50 ms. Nothing is asserted.

    .venv/bin/python bench/ui.py [--symbols 2000 --rate 6000 --seconds 60]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from playwright.sync_api import sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests package

from tests.e2e.browser import launch
from tests.e2e.stack import running_stack

LONG_TASK_MS = 50.0

# Installed before the app loads, so the observer sees every long task from the start.
OBSERVE = """
window.__bench = { longTasks: [] };
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) window.__bench.longTasks.push(entry.duration);
}).observe({ type: "longtask", buffered: true });
"""

# From now on: reset the long tasks, time every frame, count the board's updates.
START = """() => {
  const bench = window.__bench;
  bench.longTasks = [];
  bench.gaps = [];
  bench.updates = 0;
  bench.running = true;
  const asOf = document.querySelector('[data-testid="board-as-of"]');
  if (asOf) new MutationObserver(() => bench.updates++)
    .observe(asOf, { childList: true, characterData: true, subtree: true });
  let last = performance.now();
  const frame = (now) => {
    bench.gaps.push(now - last);
    last = now;
    if (bench.running) requestAnimationFrame(frame);
  };
  requestAnimationFrame(frame);
}"""

STOP = """() => {
  const bench = window.__bench;
  bench.running = false;
  return { longTasks: bench.longTasks, gaps: bench.gaps, updates: bench.updates };
}"""


def main_thread_tasks(trace: bytes) -> list[tuple[float, float]]:
    """(wall, CPU) milliseconds of each task the renderer's main thread ran, from a Chrome
    trace: wall time is what the user waits; CPU time tells the page's own work from
    time the thread spent descheduled (the machine busy elsewhere)."""
    data = json.loads(trace)
    events: list[dict[str, Any]] = data["traceEvents"] if isinstance(data, dict) else data
    main = {
        (e["pid"], e["tid"])
        for e in events
        if e.get("ph") == "M" and e.get("name") == "thread_name"
        and e["args"].get("name") == "CrRendererMain"
    }  # fmt: skip
    return [
        (e["dur"] / 1000, e.get("tdur", e["dur"]) / 1000)
        for e in events
        if e.get("ph") == "X"
        and e.get("name") == "ThreadControllerImpl::RunTask"
        and (e["pid"], e["tid"]) in main
    ]


def dropped_frames(gaps: list[float]) -> tuple[float, int]:
    """The frame length (median gap) and the frames the longer gaps skipped."""
    frame = statistics.median(gaps)
    return frame, sum(round(gap / frame) - 1 for gap in gaps if gap > 1.5 * frame)


def measure(url: str, symbols: int, seconds: float) -> dict[str, Any]:
    with sync_playwright() as playwright:
        browser = launch(playwright)
        page = browser.new_page(viewport={"width": 1920, "height": 1080})
        page.add_init_script(OBSERVE)
        page.goto(url + "/")
        page.get_by_test_id("board-row").first.wait_for(timeout=60_000)
        shown = page.get_by_test_id("board-count").inner_text()
        page.wait_for_timeout(3_000)  # past the first snapshot's render
        browser.start_tracing(page=page, categories=["toplevel"])
        page.evaluate(START)
        page.wait_for_timeout(seconds * 1000)
        seen = page.evaluate(STOP)
        tasks = main_thread_tasks(browser.stop_tracing())
        browser.close()
    frame, dropped = dropped_frames(seen["gaps"])
    return {
        "symbols": symbols,
        "board_count": shown,
        "seconds": seconds,
        "board_updates": seen["updates"],
        "tasks": len(tasks),
        "longest_task_ms": round(max((wall for wall, _ in tasks), default=0.0), 1),
        "tasks_over_50ms": sum(wall > LONG_TASK_MS for wall, _ in tasks),
        "longest_task_cpu_ms": round(max((cpu for _, cpu in tasks), default=0.0), 1),
        "tasks_over_50ms_cpu": sum(cpu > LONG_TASK_MS for _, cpu in tasks),
        "long_tasks_api": len(seen["longTasks"]),
        "long_tasks_api_max_ms": round(max(seen["longTasks"], default=0.0), 1),
        "frames": len(seen["gaps"]),
        "frame_ms": round(frame, 2),
        "dropped_frames": dropped,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=2_000)
    parser.add_argument("--rate", type=float, default=6_000.0, help="trades/s, whole market")
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data_dir:
        started = time.monotonic()
        # The quietest of 2,000 symbols may print its first trade minutes in: start with
        # nearly all of them (the rest join the board as they trade).
        with running_stack(
            Path(data_dir), symbols=args.symbols, rate=args.rate, min_rows=args.symbols * 95 // 100
        ) as url:
            print(f"tickscan up with its board filled in {time.monotonic() - started:.0f} s")
            result = measure(url, args.symbols, args.seconds)
    print(
        f"board of {result['board_count']} rows, {result['board_updates']} updates in "
        f"{result['seconds']:.0f} s"
    )
    print(
        f"main thread: {result['tasks']} tasks, longest {result['longest_task_ms']} ms, "
        f"{result['tasks_over_50ms']} over 50 ms (target: none); in CPU time: longest "
        f"{result['longest_task_cpu_ms']} ms, {result['tasks_over_50ms_cpu']} over 50 ms"
    )
    print(
        f"Long Tasks API: {result['long_tasks_api']} long tasks, longest "
        f"{result['long_tasks_api_max_ms']} ms"
    )
    print(
        f"frames: {result['frames']} at {result['frame_ms']} ms, {result['dropped_frames']} dropped"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
