"""Replay inputs: WebSocket capture files and data.binance.vision archives as trades.

How an archive's name and rows read is `flows.sources.archives`; this module opens the
files (plain, gzip or zip), tells a capture from an archive, and counts what it read.
"""

from __future__ import annotations

import csv
import gzip
import io
import logging
import zipfile
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, cast

import msgspec

from flows.errors import FlowError
from flows.sources.archives import columns_detail, parse_archive_name, row_trade
from flows.sources.binance.markets import binance_market
from flows.sources.binance.trades import BinanceDecodeError, BinanceDecoder
from schemas.trades import Market, Trade

logger = logging.getLogger(__name__)

_GZIP_MAGIC = b"\x1f\x8b"
_ZIP_MAGIC = b"PK\x03\x04"


class UnreadableFile(FlowError, ValueError):
    """A whole file that cannot be read as trades, and why; the lines before it still count.

    Attributes:
        path: The file.
        reason: A short machine reason: ``missing``, ``unreadable``, ``empty``,
            ``truncated``, ``corrupt`` or ``unnamed`` (an archive whose name does not say
            its symbol and kind).
        detail: What exactly was wrong, for a human, e.g. ``truncated: the gzip data
            ends before its end marker (after line 1,412)``.
    """

    def __init__(self, path: Path, reason: str, detail: str) -> None:
        super().__init__(f"{path}: {detail}")
        self.path = path
        self.reason = reason
        self.detail = detail


# What reading a cut-short or damaged file raises: gzip's EOFError and BadGzipFile (an
# OSError), zlib's error inside a zip member, zipfile's BadZipFile, and I/O errors.
_READ_ERRORS = (EOFError, OSError, zlib.error, zipfile.BadZipFile)


def _unreadable(path: Path, exc: BaseException, lineno: int) -> UnreadableFile:
    """The `UnreadableFile` for an error raised while opening or reading `path`."""
    after = f" (after line {lineno:,})" if lineno else ""
    if isinstance(exc, EOFError):
        return UnreadableFile(
            path, "truncated", f"truncated: the compressed data ends before its end marker{after}"
        )
    if isinstance(exc, zipfile.BadZipFile):
        return UnreadableFile(
            path, "corrupt", f"not a readable zip, cut short or damaged ({exc}){after}"
        )
    if isinstance(exc, gzip.BadGzipFile | zlib.error):
        return UnreadableFile(path, "corrupt", f"corrupt compressed data ({exc}){after}")
    if isinstance(exc, FileNotFoundError):
        return UnreadableFile(path, "missing", "no such file or directory")
    if isinstance(exc, OSError):
        return UnreadableFile(path, "unreadable", f"cannot read: {exc.strerror or exc}{after}")
    return UnreadableFile(path, "unreadable", f"cannot read: {exc}{after}")


class Rejected(msgspec.Struct, frozen=True):
    """An input line that could not become a trade, kept whole for the dead-letter topic.

    Attributes:
        source: Where it came from, ``<path>:<line number>`` (1-based).
        raw: The line as read, without its line ending.
        reason: A short machine reason (``bad_json``, ``bad_decimal``, ``missing_field``,
            ``invalid_trade``, ``bad_line``, ...).
        detail: What exactly was wrong, for a human.
    """

    source: str
    raw: bytes
    reason: str
    detail: str


@dataclass
class ReadStats:
    """What a read saw; every line lands in exactly one of trades, skipped or rejected.

    Attributes:
        lines: Lines read (a CSV header and a capture's URL line included).
        trades: Lines that became a trade.
        rejected: Lines that became a `Rejected`.
        skipped: Lines that are not trades and not errors, by kind (``bookTicker``,
            ``depthUpdate``, ``rest_snapshot``, ``header``, ``blank``, ``non_market:ADL``...).
    """

    lines: int = 0
    trades: int = 0
    rejected: int = 0
    skipped: Counter[str] = field(default_factory=Counter)

    @property
    def skipped_non_trade(self) -> int:
        """Lines skipped as not being trades."""
        return sum(self.skipped.values())


def read_trades(
    path: str | Path,
    *,
    market: Market,
    exchange: str = "binance",
    symbol: str | None = None,
    stats: ReadStats | None = None,
) -> Iterator[Trade | Rejected]:
    """Read trades from a capture or an archive file, telling which by its content.

    A capture holds one JSON message per line after a receive timestamp; an archive is a
    data.binance.vision CSV, plain or zipped. Gzip and zip are recognised by their magic
    bytes, not by the file name.

    Args:
        path: The file.
        market: ``spot`` or ``usdm``; neither format says which.
        exchange: The exchange name stamped on every trade.
        symbol: Overrides the symbol from the messages or the archive's file name.
        stats: Filled in by the time the iterator is exhausted or closed, when given.

    Yields:
        A `Trade` per trade line and a `Rejected` per bad line, in file order.

    Raises:
        UnreadableFile: At once when the file is missing, unreadable or empty (once
            decompressed); on a later `next` when it turns out cut short or corrupt, or
            when an archive's file name does not say its symbol and kind.
    """
    path = Path(path)
    if _is_capture(path):
        return read_capture(path, market=market, exchange=exchange, symbol=symbol, stats=stats)
    return read_archive(path, market=market, exchange=exchange, symbol=symbol, stats=stats)


def read_capture(
    path: str | Path,
    *,
    market: Market,
    exchange: str = "binance",
    symbol: str | None = None,
    stats: ReadStats | None = None,
) -> Iterator[Trade | Rejected]:
    """Read a WebSocket capture: one ``<receive ts> <raw JSON>`` message per line.

    Reads both the hftbacktest layout (``1723161255088176367 {"stream":...}``, receive
    time in ns) and cryptofeed's (``1633998523.957215: {"stream":...}``, whose first line
    is ``wss://... <-> <ts>``). The receive time is not used: trades carry exchange time.

    Args:
        path: The capture, gzipped or plain.
        market: ``spot`` or ``usdm``.
        exchange: The exchange name stamped on every trade.
        symbol: Overrides each message's symbol.
        stats: Filled in when the iterator is exhausted or closed, when given (counting
            once at the end keeps per-line work down).

    Yields:
        A `Trade` per trade message and a `Rejected` per bad line.
    """
    path = Path(path)
    stats = stats if stats is not None else ReadStats()
    decoder = BinanceDecoder(market, exchange=exchange, symbol=symbol)
    decode = decoder.decode
    skipped = stats.skipped
    trades = rejected = 0
    lineno = 0
    try:
        with _reading(path, lambda: lineno), _open(path) as (f, _):
            for lineno, line in enumerate(f, 1):
                start = line.find(b" ") + 1
                if not start or line.startswith((b"wss://", b"ws://")):
                    line = line.rstrip(b"\r\n")
                    if not line:
                        skipped["blank"] += 1
                        continue
                    if line.startswith((b"wss://", b"ws://")):
                        skipped["header"] += 1
                        continue
                    rejected += 1
                    yield Rejected(f"{path}:{lineno}", line, "bad_line", "no receive time")
                    continue
                try:
                    # A memoryview hands msgspec the JSON without copying the line.
                    trade = decode(memoryview(line)[start:])
                except BinanceDecodeError as exc:
                    rejected += 1
                    yield Rejected(f"{path}:{lineno}", line.rstrip(b"\r\n"), exc.reason, exc.detail)
                    continue
                if trade is None:
                    continue
                trades += 1
                yield trade
    finally:
        # The decoder counted its skips by kind; fold them in once, not per line.
        skipped.update(decoder.skipped)
        stats.lines += lineno
        stats.trades += trades
        stats.rejected += rejected
        logger.debug("read %s: %d lines, %d trades, %d rejected", path, lineno, trades, rejected)


def read_archive(
    path: str | Path,
    *,
    market: Market,
    exchange: str = "binance",
    symbol: str | None = None,
    stats: ReadStats | None = None,
) -> Iterator[Trade | Rejected]:
    """Read a data.binance.vision ``trades`` or ``aggTrades`` CSV, zipped or plain.

    The kind and symbol come from the file name (``BTCUSDT-aggTrades-2025-01-01.zip``),
    or from the CSV's name inside the zip. Handles the archive quirks: futures files
    sometimes start with a header row and spot files never do; spot files have a trailing
    ``is_best_match`` column; spot times switched from ms to µs on 2025-01-01, so each
    row's time is read by its magnitude; booleans are ``True``/``true`` or
    ``False``/``false``. Rows look like::

        spot trades       3812315236,61751.99000000,0.00016000,9.88031840,1723161599986,True,True
        usdm aggTrades    2302815133,61659.80,0.004,5266605246,5266605246,1723161599643,true

    Args:
        path: The archive file.
        market: ``spot`` or ``usdm``; it fixes the column layout.
        exchange: The exchange name stamped on every trade.
        symbol: Overrides the symbol from the file name.
        stats: Filled in as the read goes, when given.

    Yields:
        A `Trade` per row and a `Rejected` per bad row.

    Raises:
        UnreadableFile: When the file name does not say the symbol and the kind, or the
            file is cut short or corrupt.
    """
    path = Path(path)
    stats = stats if stats is not None else ReadStats()
    lineno = 0
    with _reading(path, lambda: lineno), _open(path) as (f, name):
        found = parse_archive_name(name) or parse_archive_name(path.name)
        if found is None:
            raise UnreadableFile(
                path,
                "unnamed",
                f"cannot tell symbol and kind from the name {name!r} "
                "(expected e.g. BTCUSDT-trades-2024-08-08.zip)",
            )
        kind = found.kind
        ncols = binance_market(market).archive_columns[kind]
        sym = symbol or found.symbol
        # surrogateescape: a corrupt byte must reject its row, not end the read.
        text = io.TextIOWrapper(f, encoding="utf-8", errors="surrogateescape", newline="")
        for lineno, row in enumerate(csv.reader(text), 1):
            stats.lines += 1
            if not row:
                stats.skipped["blank"] += 1
                continue
            if lineno == 1 and not row[0].isdigit():
                stats.skipped["header"] += 1
                continue
            try:
                if len(row) != ncols:
                    raise BinanceDecodeError("bad_columns", columns_detail(len(row), market, kind))
                trade = row_trade(row, kind, exchange, market, sym)
            except BinanceDecodeError as exc:
                stats.rejected += 1
                raw = ",".join(row).encode("utf-8", "surrogateescape")
                yield Rejected(f"{path}:{lineno}", raw, exc.reason, exc.detail)
                continue
            stats.trades += 1
            yield trade
        logger.debug("read %s: %d rows", path, lineno)


@contextmanager
def _reading(path: Path, lineno: Callable[[], int]) -> Iterator[None]:
    """Turn an error of opening or reading `path` into an `UnreadableFile` naming the line."""
    try:
        yield
    except _READ_ERRORS as exc:
        raise _unreadable(path, exc, lineno()) from exc


@contextmanager
def _open(path: Path) -> Iterator[tuple[IO[bytes], str]]:
    """Open a file for binary reading, unpacking gzip or a one-file zip by magic bytes.

    Yields:
        The readable bytes and the name of the file they are (the member inside a zip).
    """
    with path.open("rb") as probe:
        magic = probe.read(4)
    if magic.startswith(_GZIP_MAGIC):
        with gzip.open(path, "rb") as gz:
            # GzipFile reads like any binary file; typeshed just does not call it IO[bytes].
            yield cast(IO[bytes], gz), path.name
    elif magic == _ZIP_MAGIC:
        with zipfile.ZipFile(path) as zf:
            members = [i for i in zf.infolist() if not i.is_dir()]
            if len(members) != 1:
                raise UnreadableFile(
                    path, "corrupt", f"expected one file in the zip, found {len(members)}"
                )
            with zf.open(members[0]) as member:
                yield member, Path(members[0].filename).name
    else:
        with path.open("rb", buffering=1 << 20) as f:
            yield f, path.name


def _is_capture(path: Path) -> bool:
    """Tell a capture (JSON per line, or a URL first line) from a CSV archive.

    Raises:
        UnreadableFile: The file is missing, unreadable, empty or cut short already.
    """
    with _reading(path, lambda: 0), _open(path) as (f, name):
        head = f.readline(4096)
    if not head:
        if name != path.name:
            raise UnreadableFile(path, "empty", f"empty: the zipped {name!r} holds nothing")
        packed = " once decompressed" if path.stat().st_size else ""
        raise UnreadableFile(path, "empty", f"empty{packed}")
    return head.startswith((b"wss://", b"ws://")) or b"{" in head or b"[" in head
