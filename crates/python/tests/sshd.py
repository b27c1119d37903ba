"""A real OpenSSH ``sshd`` on loopback addresses, started and stopped by the tests.

``Sshd()`` runs ``/usr/sbin/sshd -D -e -f <config>`` as a child process listening on one free
port of each of its addresses (by default 127.0.0.1 to 127.0.0.4: one server is four distinct
hosts to fleetsh). Its temporary directory holds the host key, the client key and its
``authorized_keys``, a known_hosts file naming every address as ``[address]:port``, and a second
host key (``forged_known_hosts`` names it) and client key (``other_key``) that nobody trusts,
for failure tests. The server logs in the user running the tests: as root it may log in
anyone, as another user only that same user (and, not being root, it can give a session a
terminal only where /dev/pts hands out terminals of the tty group, ``gid=5``: containers'
often do not). ``close()`` (or the end of its ``with`` block)
stops the server by the PID of the process it started, and removes the directory.

Remote shell start-up files: sshd runs each command with the user's login shell, and Debian's
bash sources ``~/.bashrc`` for commands run by sshd. An rc file that prints would break output
assertions, and a heavy one slows every session, so the config sets ``SetEnv HOME=<empty
dir>``: the shell looks for its rc files in an empty directory, and commands run unchanged.

Environment variables: the server accepts those named ``FLEETSH_TEST_*`` (``AcceptEnv``) and
refuses every other.

Without sshd, ssh-keygen or the privilege separation directory, starting fails with an
``SshdError`` saying what to install or create: tests that use the server never skip.
"""

import getpass
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import weakref

ADDRS = ("127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4")
"""The loopback addresses a server listens on by default."""

ACCEPTED_ENV = "FLEETSH_TEST_*"
"""The environment variables the server lets a client set (its AcceptEnv pattern)."""

START_TIMEOUT = 10.0
"""Seconds a server has to answer with an SSH banner on every address."""

SSHD_MISSING = (
    "OpenSSH sshd not found at /usr/sbin/sshd or on PATH: install openssh-server "
    "(apt-get install -y openssh-server)"
)


class SshdError(RuntimeError):
    """The server cannot start; the message says why and, for sshd, what it logged."""


class Sshd:
    """A running OpenSSH server and the files that go with it.

    Attributes:
        host: the first listen address (``"127.0.0.1"``).
        addrs: every listen address.
        port: the port, the same on every address.
        user: the login user (the user running the tests).
        key: the client private key the server accepts.
        known_hosts: a known_hosts file with the server's host key for every address.
        target: ``"host:port"`` of the first address, as fleetsh takes hosts.
        targets: ``"address:port"`` for every address.
        other_key: a client key the server does not accept.
        forged_known_hosts: a known_hosts file naming every address with a host key the server
            does not have.
        host_public_key: the server's host key as ``"ssh-ed25519 AAAA..."``.
        dir: the server's temporary directory.
    """

    def __init__(self, addrs=ADDRS, log_level="ERROR", extra_config=""):
        program = find_sshd()
        self.addrs = list(addrs)
        self.host = self.addrs[0]
        self.user, root = login_user()
        self._tmp = tempfile.TemporaryDirectory(prefix="fleetsh-sshd-")
        self.dir = pathlib.Path(self._tmp.name)
        self._proc = None
        self._log = bytearray()
        self._log_lock = threading.Lock()
        self._finalizer = weakref.finalize(self, _stop, None, self._tmp)
        try:
            self._prepare(program, root, log_level, extra_config)
            self._start(program)
        except BaseException:
            self.close()
            raise

    def _prepare(self, program, root, log_level, extra_config):
        d = self.dir
        for name in ("host_ed25519", "client_ed25519", "other_host_ed25519", "other_client_ed25519"):
            keygen(d / name)
        shutil.copyfile(d / "client_ed25519.pub", d / "authorized_keys")
        (d / "home").mkdir()
        # Privilege separation: sshd started as root refuses to run without this directory
        # (the openssh-server package's service creates it at boot, which containers skip).
        privsep = pathlib.Path("/run/sshd")
        if root and not privsep.is_dir():
            try:
                privsep.mkdir(parents=True, mode=0o755)
            except OSError as e:
                raise SshdError(f"cannot create sshd's privilege separation directory {privsep}: {e}")
        self.key = d / "client_ed25519"
        self.other_key = d / "other_client_ed25519"
        self.known_hosts = d / "known_hosts"
        self.forged_known_hosts = d / "forged_known_hosts"
        self.host_public_key = read_public_key(d / "host_ed25519.pub")
        self._other_public_key = read_public_key(d / "other_host_ed25519.pub")
        self._extra = penalties_off(program, d) + extra_config
        if "LogLevel " not in self._extra:
            self._extra += f"LogLevel {log_level}\n"

    def _start(self, program):
        # A port free on the first address a moment ago may be taken on another, or by
        # someone else before sshd binds it: try a few ports.
        failures = []
        for _ in range(3):
            port = free_port(self.host)
            self.port = port
            config = self.dir / "sshd_config"
            config.write_text(self._config(port))
            self.known_hosts.write_text(self.known_hosts_lines(self.host_public_key))
            self.forged_known_hosts.write_text(self.known_hosts_lines(self._other_public_key))
            with self._log_lock:
                self._log.clear()
            try:
                self._proc = subprocess.Popen(
                    [str(program), "-D", "-e", "-f", str(config)],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                )
            except OSError as e:
                raise SshdError(f"cannot run {program}: {e}")
            self._finalizer.detach()
            self._finalizer = weakref.finalize(self, _stop, self._proc, self._tmp)
            # sshd's stderr (-e), drained so that a full pipe never blocks the server.
            threading.Thread(target=self._drain, args=(self._proc.stderr,), daemon=True).start()
            ready, why = self._wait_until_listening()
            if ready:
                return
            _stop(self._proc, None)
            self._proc = None
            time.sleep(0.05)  # the drain thread collects the last lines
            if why == "port taken":
                failures.append(f"port {port}: {self.log()}")
                continue
            raise SshdError(f"{program} did not start ({why}); its stderr:\n{self.log()}")
        raise SshdError("sshd found no free port; its stderr:\n" + "\n".join(failures))

    def _config(self, port):
        lines = [f"Port {port}"]
        lines += [f"ListenAddress {a}:{port}" for a in self.addrs]
        d = self.dir
        lines += [
            f'HostKey "{d / "host_ed25519"}"',
            f'AuthorizedKeysFile "{d / "authorized_keys"}"',
            # The server's PID is the child's: no pid file to write (or to clash over).
            "PidFile none",
            f'SetEnv "HOME={d / "home"}"',
            # Key files in a temporary directory whose modes sshd would otherwise judge; no
            # PAM, whose session modules a container seldom has set up.
            "UsePAM no",
            "StrictModes no",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "PermitRootLogin prohibit-password",
            f"AcceptEnv {ACCEPTED_ENV}",
            # sshd drops new unauthenticated connections at random once the first number are
            # in flight; a test may open dozens of sessions at once.
            "MaxStartups 200:30:400",
            "PrintMotd no",
            "PrintLastLog no",
            "Subsystem sftp internal-sftp",
        ]
        return "\n".join(lines) + "\n" + self._extra

    def known_hosts_lines(self, public_key):
        """known_hosts lines naming every listen address, at the server's port, with
        ``public_key`` (``"ssh-ed25519 AAAA..."``)."""
        return "".join(f"[{a}]:{self.port} {public_key}\n" for a in self.addrs)

    def _drain(self, stream):
        while True:
            chunk = stream.read1(8192) if hasattr(stream, "read1") else stream.read(8192)
            if not chunk:
                return
            with self._log_lock:
                self._log += chunk

    def _wait_until_listening(self):
        pending = list(self.addrs)
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if "Address already in use" in self.log():
                return False, "port taken"
            code = self._proc.poll()
            if code is not None:
                return False, f"it exited with status {code}"
            pending = [a for a in pending if not answers_ssh(a, self.port)]
            if not pending:
                return True, None
            if time.monotonic() > deadline:
                where = ", ".join(f"{a}:{self.port}" for a in pending)
                return False, f"no SSH banner within {START_TIMEOUT:g} s on {where}"
            time.sleep(0.05)

    @property
    def target(self):
        return f"{self.host}:{self.port}"

    @property
    def targets(self):
        return [f"{a}:{self.port}" for a in self.addrs]

    @property
    def pid(self):
        """The server's process id, or None once stopped."""
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self):
        return self._proc is not None and self._proc.poll() is None

    def path(self, name):
        """A file of the server's directory (``"client_ed25519"``, ``"known_hosts"``, ...)."""
        return self.dir / name

    def log(self):
        """What sshd has logged so far (its stderr), for failure messages."""
        with self._log_lock:
            return self._log.decode("utf-8", "replace")

    def close(self):
        """Stops the server (only the listener this process started: sessions still open end
        with their connections) and removes its directory. Closing twice does nothing."""
        self._proc = None
        self._finalizer()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __repr__(self):
        state = "running" if self.running else "stopped"
        return f"<Sshd {self.user}@{','.join(self.addrs)} port {getattr(self, 'port', '?')} {state}>"


def _stop(proc, tmp):
    """Stops the server `proc` (by its PID, as Popen does) and removes `tmp`."""
    if proc is not None and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
    # sshd's stderr is left to its drain thread, which ends when the pipe closes: closing it
    # here would wait for that thread's read, which session processes still running (a client
    # that kept its connection) hold open.
    if tmp is not None:
        tmp.cleanup()


def find_sshd():
    """OpenSSH's sshd: /usr/sbin/sshd, else the first on PATH (sshd re-executes itself and
    needs an absolute path)."""
    default = pathlib.Path("/usr/sbin/sshd")
    if default.is_file():
        return default
    for d in os.environ.get("PATH", "").split(os.pathsep):
        p = pathlib.Path(d) / "sshd"
        if p.is_absolute() and p.is_file():
            return p
    raise SshdError(SSHD_MISSING)


def keygen(path, kind="ed25519"):
    """Writes a new key pair of type `kind` without passphrase to `path` and `path`.pub."""
    try:
        out = subprocess.run(
            ["ssh-keygen", "-q", "-t", kind, "-N", "", "-C", "fleetsh-test", "-f", str(path)],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=30,
        )
    except FileNotFoundError:
        raise SshdError("ssh-keygen not found: install openssh-client (apt-get install -y openssh-client)")
    if out.returncode != 0:
        raise SshdError(f"ssh-keygen failed: {out.stderr.decode(errors='replace')}")


def read_public_key(path):
    """The type and base64 fields of an OpenSSH public key file, without its comment."""
    return " ".join(pathlib.Path(path).read_text().split()[:2])


def penalties_off(program, dir):
    """``PerSourcePenalties no`` if this sshd knows the option, else nothing.

    OpenSSH 9.8 and later penalise a source address whose connections fail to authenticate,
    and refuse it for a while once the penalties add up. Every test connects from 127.0.0.1,
    so the wrong-key tests would lock the other tests out of a shared server. Older servers
    (Debian 12's 9.2) reject the option: ``sshd -t`` tells.
    """
    option = "PerSourcePenalties no\n"
    probe = dir / "probe_config"
    probe.write_text(f'HostKey "{dir / "host_ed25519"}"\n{option}')
    try:
        known = subprocess.run(
            [str(program), "-t", "-f", str(probe)],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=30,
        ).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        known = False
    return option if known else ""


def login_user():
    """The name of the user running the tests, and whether it is root."""
    uid = os.getuid()
    try:
        import pwd

        name = pwd.getpwuid(uid).pw_name
    except (ImportError, KeyError):
        name = os.environ.get("USER") or getpass.getuser()
    if not name:
        raise SshdError("cannot tell the current user's name (no passwd entry and $USER is unset)")
    return name, uid == 0


def free_port(addr):
    """A port free on `addr` a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((addr, 0))
        return s.getsockname()[1]


def answers_ssh(addr, port):
    """Whether `addr`:`port` answers with an SSH version line."""
    try:
        with socket.create_connection((addr, port), timeout=0.5) as s:
            s.settimeout(1.0)
            # Sending a version line first keeps sshd from logging an error for the probe.
            s.sendall(b"SSH-2.0-probe\r\n")
            banner = b""
            while b"\n" not in banner and len(banner) < 256:
                chunk = s.recv(256)
                if not chunk:
                    break
                banner += chunk
            return banner.startswith(b"SSH-2.0-")
    except OSError:
        return False
