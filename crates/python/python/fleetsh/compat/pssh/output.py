"""The output of a command on one host, as parallel-ssh's ``pssh.output``."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from typing import Any, Optional

from . import _core
from .exceptions import InvalidAPIUseError, exception_for

__all__ = ["BufferData", "HostOutput", "HostOutputBuffers"]

host_logger = logging.getLogger("pssh.host_logger")


class HostOutputBuffers:
    """Kept for code that names it: fleetsh keeps each host's unread lines itself, and
    ``HostOutput.buffers`` is always None."""

    __slots__ = ("stdout", "stderr")

    def __init__(self, stdout: Any, stderr: Any) -> None:
        self.stdout = stdout
        self.stderr = stderr


class BufferData:
    """Kept for code that names it (see HostOutputBuffers)."""

    __slots__ = ("reader", "rw_buffer")

    def __init__(self, reader: Any, rw_buffer: Any) -> None:
        self.reader = reader
        self.rw_buffer = rw_buffer


class _Source:
    """Where one host's output comes from: a slot of a Pump, once the command has started.

    A command run through sudo without a known password starts only when its input is known
    (see ParallelSSHClient.run_command): until then ``pump`` is None and ``pending`` starts
    it."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.pump: Optional[_core.Pump] = None
        self.slot = 0
        self.pending: Any = None
        self.stdin = bytearray()
        self.flushed = False
        self.closed = False

    def started(self) -> Optional[_core.Pump]:
        """The pump, starting a pending command first."""
        pending = self.pending
        if self.pump is None and pending is not None:
            pending.start()
        return self.pump

    def result(self) -> Any:
        """The host's result if it has come (checked without waiting), else None."""
        pump = self.started()
        if pump is None or not pump.finished(self.slot):
            return None
        return pump.results[self.slot]


class Stdin:
    """The standard input of a host's command.

    fleetsh sends a command its input when the command starts (``run_command(...,
    stdin=...)``). What is written here is used only by a command run with ``sudo=True`` or
    ``user=...`` and no sudo password (parallel-ssh's way of answering sudo's password prompt):
    such a command starts once every host's input has been flushed, or once its output,
    exit code or end is asked for; the first line written is sudo's password and the rest is
    the command's input. Writing to any other command's input raises InvalidAPIUseError.
    """

    __slots__ = ("_source", "_encoding")

    def __init__(self, source: _Source, encoding: str = "utf-8") -> None:
        self._source = source
        self._encoding = encoding

    def write(self, data: Any) -> int:
        """Adds ``data`` (str, encoded with the output's encoding, or bytes) to the input.

        Raises:
            InvalidAPIUseError: the command has already started.
        """
        source = self._source
        if source.pending is None or source.pump is not None:
            raise InvalidAPIUseError(
                "stdin: fleetsh sends a command's standard input when the command starts; "
                "give it as run_command(..., stdin=...) (writing to stdin is only for sudo's "
                "password, with run_command(..., sudo=True) and no sudo_password)")
        raw = data.encode(self._encoding) if isinstance(data, str) else bytes(data)
        source.stdin += raw
        return len(raw)

    def flush(self) -> None:
        """Marks the input complete: once every host's input is, the command starts."""
        source = self._source
        if source.pending is None or source.pump is not None:
            return
        source.flushed = True
        source.pending.flushed()


class Channel:
    """Stands for the SSH channel of a host's command: ``eof()``, ``get_exit_status()``,
    ``close()``."""

    __slots__ = ("_source",)

    def __init__(self, source: _Source) -> None:
        self._source = source

    def eof(self) -> bool:
        """Whether the command has finished."""
        return self._source.result() is not None

    def get_exit_status(self) -> Optional[int]:
        """The exit status, None until the command has finished."""
        result = self._source.result()
        return None if result is None else result.exit_code

    def close(self) -> None:
        """Closes the channel: see SSHClient.close_channel."""
        source = self._source
        pump = source.started()
        if pump is None or source.closed:
            return
        source.closed = True
        pump.closed[source.slot] = True
        if all(pump.closed):
            pump.run.cancel()

    def __repr__(self) -> str:
        return f"<fleetsh.compat.pssh Channel {self._source.target}>"


class HostOutput:
    """The output of a command on one host, as returned by ``run_command``.

    ``stdout`` and ``stderr`` are iterators of lines (str, decoded with ``encoding``, without
    their newline) yielding each line as the host sends it: each access gives an iterator of
    the lines not read yet. ``exit_code`` is None until the command has finished.
    ``exception`` is the host's failure: set by run_command for a host that could not be
    connected (with ``stop_on_errors=False``), and for a host whose command failed after it
    started (a refused channel, a lost connection, a command timeout) once it has finished.

    ``read_timeout`` (seconds) bounds each reading of ``stdout`` or ``stderr`` from its first
    line to its end, as parallel-ssh's does: past it, reading raises Timeout. It may be
    changed at any time.

    ``client`` is an SSHClient for the host (None for a host that could not be connected),
    ``channel`` stands for the command's channel, ``stdin`` is the command's input (see
    Stdin), ``buffers`` is None.
    """

    __slots__ = (
        "host", "channel", "stdin", "client", "alias", "_exception", "encoding",
        "read_timeout", "buffers", "fully_qualified_command", "_source",
    )

    def __init__(
        self,
        host: str,
        channel: Any,
        stdin: Any,
        client: Any,
        alias: Optional[str] = None,
        exception: Optional[BaseException] = None,
        encoding: str = "utf-8",
        read_timeout: Optional[float] = None,
        buffers: Any = None,
        fully_qualified_command: Optional[bytes] = None,
    ) -> None:
        """Takes parallel-ssh's arguments. run_command makes these; code that makes its own
        (with ``client=None``) gets an output without lines, as in parallel-ssh."""
        self.host = host
        self.channel = channel
        self.stdin = stdin
        self.client = client
        self.alias = alias
        self._exception = exception
        self.encoding = encoding
        self.read_timeout = read_timeout
        self.buffers = buffers
        self.fully_qualified_command = fully_qualified_command
        self._source: Optional[_Source] = None

    @property
    def exception(self) -> Optional[BaseException]:
        """The host's failure, or None (see the class)."""
        if self._exception is not None or self._source is None:
            return self._exception
        result = self._source.result()
        if result is None or self._source.closed:
            return None
        return exception_for(result)

    @exception.setter
    def exception(self, value: Optional[BaseException]) -> None:
        self._exception = value

    def _lines(self, stream: str, prefix: str) -> Iterator[str]:
        source = self._source
        if source is None:
            return
        pump = source.started()
        if pump is None:
            return
        deadline = None
        first = True
        for _ in range(1 << 62):
            if first:
                deadline = _core.deadline_of(self.read_timeout)
                first = False
            line = pump.next_line(source.slot, stream, deadline, self.host)
            if line is None:
                return
            text = line.decode(self.encoding)
            host_logger.info("[%s]%s\t%s", self.host, prefix, text)
            yield text

    @property
    def stdout(self) -> Optional[Iterator[str]]:
        """The command's standard output, line by line as it arrives; None for a host that
        could not be connected (as parallel-ssh)."""
        if self.client is None:
            return None
        return self._lines("stdout", "")

    @property
    def stderr(self) -> Optional[Iterator[str]]:
        """The command's standard error, line by line as it arrives (empty with
        ``use_pty=True``: a terminal merges it into stdout); None for a host that could not
        be connected."""
        if self.client is None:
            return None
        return self._lines("stderr", "\t[err]")

    @property
    def exit_code(self) -> Optional[int]:
        """The command's exit status; None until it has finished, and for a host whose
        command failed (see ``exception``) or that could not be connected."""
        if self.client is None or self._source is None:
            return None
        result = self._source.result()
        return None if result is None else result.exit_code

    @property
    def exit_signal(self) -> Optional[str]:
        """The signal that ended the command (``"KILL"``), if one did (fleetsh's addition)."""
        if self._source is None:
            return None
        result = self._source.result()
        return None if result is None else result.signal

    @property
    def result(self) -> Any:
        """The host's ``fleetsh.HostResult`` once it has finished, else None (fleetsh's
        addition: timings, attempts, the error kind)."""
        return None if self._source is None else self._source.result()

    def __repr__(self) -> str:
        # A command waiting for sudo's password written to stdin stays waiting: showing the
        # output must not start it (exit_code and exception would).
        waiting = (self._source is not None and self._source.pump is None
                   and self._source.pending is not None)
        exit_code = None if waiting else self.exit_code
        exception = self._exception if waiting else self.exception
        return (
            "\thost={host}{sep}\talias={alias}{sep}\texit_code={exit_code}{sep}"
            "\tchannel={channel}{sep}\texception={exception}{sep}\tencoding={encoding}{sep}"
            "\tread_timeout={read_timeout}{sep}"
            "\tfully_qualified_command={fqc}".format(
                host=self.host, alias=self.alias, exit_code=exit_code,
                channel=self.channel, exception=exception, encoding=self.encoding,
                read_timeout=self.read_timeout, fqc=self.fully_qualified_command,
                sep=os.linesep,
            )
        )

    def __str__(self) -> str:
        return self.__repr__()

