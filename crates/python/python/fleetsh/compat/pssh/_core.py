"""The machinery under ``fleetsh.compat.pssh``'s clients: reading a streaming run's lines on
demand, waiting for results, greenlet-shaped tasks, per-host settings and the engines and
connected fleets that serve them."""

from __future__ import annotations

import collections
import os
import posixpath
import shutil
import tempfile
import threading
import time
from collections.abc import Iterable
from typing import Any, Callable, Optional

import fleetsh

from .exceptions import Timeout

SLICE = 5.0
"""Longest wait, in seconds, inside one call to the native iterators: a thread waiting longer
comes back to check its deadline and whether another thread already got what it waits for."""

COOPERATIVE_SLICE = 0.05
"""Wait slice of a task running in a gevent greenlet, which then yields to gevent's hub so that
other greenlets (and gevent's own timeouts) keep running."""

POLL = 0
"""The wait of a check that must not wait."""

DRAIN_LIMIT = 100_000
"""Most items a non-blocking check takes from a run at once."""

STREAMS = ("stdout", "stderr")


def deadline_of(timeout: Optional[float]) -> Optional[float]:
    """The monotonic time ``timeout`` seconds from now, or None for no timeout."""
    return None if timeout is None else time.monotonic() + max(0.0, float(timeout))


def remaining(deadline: Optional[float]) -> Optional[float]:
    """Seconds left until ``deadline`` (never below 0), or None without a deadline."""
    return None if deadline is None else max(0.0, deadline - time.monotonic())


class Pump:
    """One streaming run's lines and results, read on demand by whichever thread needs them.

    A thread waiting for a host's next line reads the run's ``lines()`` stream itself, keeping
    every other host's lines for later, until its host's line (or result) comes. Only one
    thread reads the native stream at a time; the others wait for it to hand out what it read.
    """

    def __init__(self, run: fleetsh.Run, slots: dict[int, int]) -> None:
        """Args:
            run: a run started with ``stream=True``.
            slots: the fleet index of each host of the run -> its slot here (0, 1, ...).
        """
        self.run = run
        self._stream = run.lines()
        self._slots = slots
        size = len(slots)
        self._cond = threading.Condition()
        self._reading = False
        self.ended = False
        self.failure: Optional[BaseException] = None
        self._lines = [{s: collections.deque() for s in STREAMS} for _ in range(size)]
        self._partial = [{s: b"" for s in STREAMS} for _ in range(size)]
        self.results: list[Optional[fleetsh.HostResult]] = [None] * size
        self.closed = [False] * size

    def _take(self, item: Any) -> None:
        """Files one item of the native stream (the condition's lock held)."""
        slot = self._slots.get(item.index)
        if slot is None:
            return
        if isinstance(item, fleetsh.HostResult):
            for stream in STREAMS:
                if self._partial[slot][stream]:
                    self._lines[slot][stream].append(self._partial[slot][stream])
                    self._partial[slot][stream] = b""
            self.results[slot] = item
            return
        stream = item.stream if item.stream in STREAMS else "stdout"
        data = bytes(item.bytes)
        if item.end == "split":
            self._partial[slot][stream] += data
            return
        self._lines[slot][stream].append(self._partial[slot][stream] + data)
        self._partial[slot][stream] = b""

    def _read_one(self, timeout: Optional[float]) -> None:
        """Reads one item (or nothing before ``timeout``) without the lock, then files it. A
        failure of the native stream is kept for every waiter; an interruption (Ctrl-C, which
        also cancels the run) is raised to this reader only."""
        item = None
        ended = False
        failure: Optional[BaseException] = None
        try:
            item = self._stream.next(timeout=timeout)
        except TimeoutError:
            pass
        except StopIteration:
            ended = True
        except Exception as ex:
            failure = ex
        finally:
            with self._cond:
                self._reading = False
                if item is not None:
                    self._take(item)
                if ended:
                    self.ended = True
                if failure is not None:
                    self.failure = failure
                    self.ended = True
                self._cond.notify_all()
        if failure is not None:
            raise failure

    def wait(self, ready: Callable[[], bool], deadline: Optional[float]) -> bool:
        """Reads the run until ``ready()`` (called with the lock held) is true, the run ends, or
        ``deadline`` passes. Returns ``ready()``."""
        while True:
            with self._cond:
                if ready():
                    return True
                if self.ended:
                    if self.failure is not None:
                        raise self.failure
                    return ready()
                left = remaining(deadline)
                if left is not None and left <= 0:
                    return False
                wait = SLICE if left is None else min(left, SLICE)
                if self._reading:
                    self._cond.wait(wait)
                    continue
                self._reading = True
            self._read_one(wait)

    def poll(self) -> None:
        """Files whatever the run has ready, without waiting (and without reading at all while
        another thread reads)."""
        for _ in range(DRAIN_LIMIT):
            with self._cond:
                if self.ended or self._reading:
                    return
                self._reading = True
            try:
                item = self._stream.next(timeout=POLL)
            except TimeoutError:
                with self._cond:
                    self._reading = False
                    self._cond.notify_all()
                return
            except StopIteration:
                with self._cond:
                    self._reading = False
                    self.ended = True
                    self._cond.notify_all()
                return
            except BaseException:
                with self._cond:
                    self._reading = False
                    self._cond.notify_all()
                raise
            with self._cond:
                self._reading = False
                self._take(item)
                self._cond.notify_all()

    def next_line(
        self, slot: int, stream: str, deadline: Optional[float], host: str = "",
    ) -> Optional[bytes]:
        """The host's next line on ``stream`` (bytes, without its newline), None at its end.

        Raises:
            Timeout: ``deadline`` passed first.
        """
        lines = self._lines[slot][stream]

        def ready() -> bool:
            return bool(lines) or self.results[slot] is not None

        if not self.wait(ready, deadline):
            raise Timeout("Timeout reading %s of host %s", stream, host)
        with self._cond:
            return lines.popleft() if lines else None

    def finished(self, slot: int) -> bool:
        """Whether the host has its result, checking without waiting."""
        if self.results[slot] is None:
            self.poll()
        return self.results[slot] is not None

    def wait_finished(self, slot: int, deadline: Optional[float]) -> bool:
        """Waits until the host has its result or ``deadline`` passes; whether it has."""
        return self.wait(lambda: self.results[slot] is not None, deadline)


class Results:
    """The results of a run (a copy, a connection check), by fleet index, for the tasks that
    wait on them. ``on_result`` is called once per result, in the thread that reads it."""

    def __init__(
        self,
        run: fleetsh.Run,
        on_result: Optional[Callable[[fleetsh.HostResult], None]] = None,
    ) -> None:
        self._run = run
        self._stream = run.events()
        self._on_result = on_result
        self._lock = threading.Lock()
        self.by_index: dict[int, fleetsh.HostResult] = {}
        self.ended = False

    def wait(self, index: int, timeout: Optional[float]) -> Optional[fleetsh.HostResult]:
        """The result of the host at fleet ``index``, waiting at most ``timeout`` seconds
        (None: until it comes); None if it has not come by then."""
        deadline = deadline_of(timeout)
        while True:
            left = remaining(deadline)
            if not self._lock.acquire(timeout=-1 if left is None else left):
                return None
            try:
                if index in self.by_index:
                    return self.by_index[index]
                if self.ended:
                    return None
                left = remaining(deadline)
                if left is not None and left <= 0:
                    return None
                try:
                    item = self._stream.next(timeout=SLICE if left is None else min(left, SLICE))
                except TimeoutError:
                    continue
                except StopIteration:
                    self.ended = True
                    continue
                if isinstance(item, fleetsh.HostResult):
                    self.by_index[item.index] = item
                    if self._on_result is not None:
                        self._on_result(item)
            finally:
                self._lock.release()


def _gevent() -> Any:
    """gevent, when it can be imported, else None."""
    try:
        import gevent
        import gevent.hub
    except ImportError:
        return None
    return gevent


_HUB_CONFIGURED = False


class Task:
    """One host's share of a copy, shaped like the gevent Greenlet parallel-ssh returns:
    ``get()`` returns its value or raises its exception, ``join()`` waits, ``successful()``,
    ``ready()``, ``value`` and ``exception``. Used when gevent cannot be imported; its work
    runs in the thread that first waits for it."""

    def __init__(self, work: Callable[[Optional[float]], Any]) -> None:
        """Args:
            work: called with a timeout (seconds or None); returns the value, raises the
                exception, or raises TimeoutError when the timeout passed first.
        """
        self._work = work
        self._lock = threading.Lock()
        self._done = False
        self.value: Any = None
        self.exception: Optional[BaseException] = None

    def _run(self, timeout: Optional[float]) -> bool:
        with self._lock:
            if self._done:
                return True
            try:
                self.value = self._work(timeout)
            except TimeoutError:
                return False
            except Exception as ex:  # the host's failure, kept to be raised by get()
                self.exception = ex
            self._done = True
            return True

    def get(self, block: bool = True, timeout: Optional[float] = None) -> Any:
        """The value, or raises the exception (Timeout when ``timeout`` passes first)."""
        if not self._run(timeout if block else 0):
            raise Timeout("Timeout of %s sec(s) waiting for a copy", timeout)
        if self.exception is not None:
            raise self.exception
        return self.value

    def join(self, timeout: Optional[float] = None) -> None:
        """Waits until done, or at most ``timeout`` seconds."""
        self._run(timeout)

    def ready(self) -> bool:
        """Whether the task is done."""
        return self._done

    @property
    def dead(self) -> bool:
        """Whether the task is done (a greenlet's name for it)."""
        return self._done

    def successful(self) -> bool:
        """Whether the task is done without an exception."""
        return self._done and self.exception is None

    def __repr__(self) -> str:
        state = "pending" if not self._done else ("ok" if self.exception is None else "failed")
        return f"<fleetsh.compat.pssh Task {state}>"


def spawn(work: Callable[[Optional[float]], Any]) -> Any:
    """A gevent Greenlet running ``work`` when gevent can be imported (so that
    ``gevent.joinall(tasks, raise_error=True)`` works unchanged), else a Task.

    As parallel-ssh does, gevent's hub is told not to print the tracebacks of greenlets that
    fail with an Exception: their failure is for ``joinall``/``get`` to raise.
    """
    global _HUB_CONFIGURED
    gevent = _gevent()
    if gevent is None:
        return Task(work)
    if not _HUB_CONFIGURED:
        gevent.hub.Hub.NOT_ERROR = (Exception,)
        _HUB_CONFIGURED = True

    def cooperative() -> Any:
        for _ in range(1 << 62):
            try:
                return work(COOPERATIVE_SLICE)
            except TimeoutError:
                gevent.sleep(0)
        return None

    return gevent.spawn(cooperative)


def failed(ex: BaseException) -> Any:
    """A task that fails with ``ex``."""

    def work(timeout: Optional[float]) -> Any:
        raise ex

    return spawn(work)


def succeeded() -> Any:
    """A task that succeeds at once with None."""
    return spawn(lambda timeout: None)


def target_of(user: str, host: str, port: int) -> str:
    """fleetsh's spelling of a host: ``user@host:port`` (IPv6 addresses in brackets)."""
    shown = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return f"{user}@{shown}:{port}"


class Group:
    """Hosts served by one engine and its connected fleets: each target at most once (a host
    given twice in the client's list is in two groups).

    A connected fleet runs its commands one after another, where parallel-ssh runs a client's
    commands at once (a ``tail -f`` still streaming while the next ``run_command`` goes). So
    the group keeps one fleet while it is free and, while every fleet it has is running a
    command, connects another and keeps that too."""

    def __init__(self, engine: fleetsh.Engine, run_options: dict[str, Any]) -> None:
        self.engine = engine
        self.run_options = run_options
        self.targets: list[str] = []
        self.indices: list[int] = []
        self._fleets: list[fleetsh.ConnectedFleet] = []
        self._running: dict[int, list[fleetsh.Run]] = {}
        self._lock = threading.Lock()

    def fleet(self) -> fleetsh.ConnectedFleet:
        """A connected fleet of the group's hosts with no command running (made at first
        use, and again while every one made has a command running)."""
        with self._lock:
            for fleet in self._fleets:
                running = self._running.setdefault(id(fleet), [])
                running[:] = [run for run in running if not run.done]
                if not running:
                    return fleet
            fleet = self.engine.connect(self.targets)
            self._fleets.append(fleet)
            self._running[id(fleet)] = []
            return fleet

    def start(self, use: Callable[[fleetsh.ConnectedFleet], fleetsh.Run]) -> fleetsh.Run:
        """Starts a command or copy on a free fleet (``use(fleet)``), which stays busy until
        the run is done."""
        fleet = self.fleet()
        run = use(fleet)
        with self._lock:
            self._running.setdefault(id(fleet), []).append(run)
        return run

    def close(self) -> None:
        """Disconnects the group's hosts."""
        with self._lock:
            fleets, self._fleets = self._fleets, []
            self._running.clear()
        for fleet in fleets:
            fleet.close()


def local_skeleton(path: str) -> tuple[Optional[str], Optional[str], Optional[str]]:
    """How to create the remote directory ``path`` (and its parents) over SFTP by uploading
    empty directories: ``(temporary local dir, its top directory to upload, remote base)``,
    or Nones when there is nothing to create (``.``, ``/``) or it cannot be done this way
    (a path climbing above the login directory with ``..``)."""
    norm = posixpath.normpath(path)
    base = "/" if norm.startswith("/") else "."
    rel = norm.lstrip("/")
    if rel in ("", ".") or rel == ".." or rel.startswith("../"):
        return None, None, None
    top = rel.split("/", 1)[0]
    tmp = tempfile.mkdtemp(prefix="fleetsh-pssh-dirs-")
    os.makedirs(os.path.join(tmp, *rel.split("/")))
    return tmp, os.path.join(tmp, top), base


def merge_move(src: str, dest: str, limit: int = 1_000_000) -> None:
    """Moves ``src`` to ``dest``; a directory moved onto an existing directory is merged into
    it, entry by entry (at most ``limit`` entries)."""
    if not (os.path.isdir(src) and os.path.isdir(dest)):
        os.replace(src, dest)
        return
    pending = [(src, dest)]
    moved = 0
    while pending and moved < limit:
        s, d = pending.pop()
        for name in os.listdir(s):
            moved += 1
            sp, dp = os.path.join(s, name), os.path.join(d, name)
            if os.path.isdir(sp) and os.path.isdir(dp):
                pending.append((sp, dp))
            else:
                os.replace(sp, dp)


def remove_tree(path: Optional[str]) -> None:
    """Removes a temporary directory, ignoring one already gone."""
    if path:
        shutil.rmtree(path, ignore_errors=True)


def as_list(hosts: Iterable[str]) -> list[str]:
    """The hosts as a list, as parallel-ssh takes them (any iterable but a string)."""
    if hosts is None:
        raise ValueError("hosts: a list of host names is needed, got None")
    if isinstance(hosts, (str, bytes)):
        raise TypeError(
            "hosts must be a list or other iterable, not a string: "
            "['localhost'], not 'localhost'")
    result = list(hosts)
    for host in result:
        if not isinstance(host, str) or not host:
            raise TypeError(f"hosts: every host must be a non-empty str, got {host!r}")
    return result
