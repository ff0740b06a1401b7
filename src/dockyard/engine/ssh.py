"""One multiplexed SSH connection per machine, with the machine's engine socket forwarded
through it.

`docker -H ssh://` opens a new SSH connection (and a `docker system dial-stdio` session)
for every call, and compose opens several at once, so it exhausts sshd's MaxSessions
(compose#11677); docker-py's paramiko transport ignores ~/.ssh/config and never reuses a
connection (docker-py#3062). dockyard instead runs one OpenSSH ControlMaster per machine
(`ssh -M -N -f`, ControlPersist), asks it once where the engine answers on the other side
(`$DOCKER_HOST` there, else /var/run/docker.sock: one session), and forwards that socket
to a local one (`-O forward -L local.sock:remote.sock`). Every SDK, `docker` and
`docker compose` call then talks to the local socket: each is a channel of the one
connection, not a session, so a machine sees one login and at most one session at a time
whatever dockyard does. A later command finds the master alive (ControlPersist) and pays
no handshake.

The user's ssh settings apply (~/.ssh/config, keys, agent, known_hosts);
`DOCKYARD_SSH_CONFIG` names another config file instead (the test harness's). Nothing is
accepted on the user's behalf: an unknown or changed host key is an error that says how
to accept it. The control and forwarded sockets live in a short per-user folder (a Unix
socket's path may not exceed 107 bytes; a state folder's can)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from dockyard.engine.run import run
from dockyard.errors import EngineError, Location, MachineUnreachable

CONNECT_TIMEOUT = 3  # seconds for TCP connect + SSH banner (ssh's ConnectTimeout)
MASTER_TIMEOUT = 4.5  # the whole login, so an unreachable machine is said within 5 s
PING_TIMEOUT = 1.0  # a forwarded /_ping through a live master: well under a second
PERSIST = 300  # seconds an idle master stays for the next command
REMOTE_DEFAULT = "unix:///var/run/docker.sock"
CONFIG_ENV = "DOCKYARD_SSH_CONFIG"


def runtime_dir() -> Path:
    """A short folder only this user can enter, for control and forwarded sockets."""
    base = os.environ.get("XDG_RUNTIME_DIR") or "/tmp"
    folder = Path(base) / f"dockyard-ssh-{os.getuid()}"
    folder.mkdir(mode=0o700, exist_ok=True)
    if folder.stat().st_uid != os.getuid() or folder.stat().st_mode & 0o077:
        raise EngineError(f"{folder} is not a folder of this user's alone",
                          fix="remove it, or set XDG_RUNTIME_DIR to a private folder")
    return folder


@dataclass(frozen=True)
class SshAddress:
    """`ssh://[user@]host[:port]` taken apart."""

    user: str
    host: str
    port: int | None

    @classmethod
    def parse(cls, url: str) -> SshAddress:
        parts = urlsplit(url)
        return cls(parts.username or "", parts.hostname or "", parts.port)

    @property
    def destination(self) -> str:
        return f"{self.user}@{self.host}" if self.user else self.host

    @property
    def shown(self) -> str:
        return self.destination + (f":{self.port}" if self.port else "")


def ssh_config() -> str:
    """The ssh config file dockyard's connections read ("" for ssh's own default)."""
    return os.environ.get(CONFIG_ENV, "")


class Tunnel:
    """The machine's one SSH connection and its engine's socket, forwarded to a local one."""

    def __init__(self, url: str, machine: str, where: Location | None = None) -> None:
        self.address = SshAddress.parse(url)
        self.url = url
        self.machine = machine
        self.where = where
        config = ssh_config()
        key = hashlib.sha256(f"{url}\0{config}".encode()).hexdigest()[:16]
        folder = runtime_dir()
        self.control = folder / f"{key}.ctl"
        self.socket = folder / f"{key}.sock"
        self.log = folder / f"{key}.log"
        self._lock = threading.Lock()
        self._open = False

    # -- ssh's argv --------------------------------------------------------------------------

    def argv(self, *args: str, command: str = "") -> list[str]:
        """`ssh` through this machine's control socket, then `args`, the destination and
        the remote `command` (none: a control or master command)."""
        argv = ["ssh"]
        config = ssh_config()
        if config:
            argv += ["-F", config]
        argv += ["-o", f"ControlPath={self.control}", "-o", "BatchMode=yes",
                 "-o", f"ConnectTimeout={CONNECT_TIMEOUT}",
                 "-o", "ServerAliveInterval=2", "-o", "ServerAliveCountMax=2",
                 "-o", "StreamLocalBindUnlink=yes"]
        if self.address.port:
            argv += ["-p", str(self.address.port)]
        return [*argv, *args, self.address.destination, *([command] if command else [])]

    # -- open --------------------------------------------------------------------------------

    def open(self) -> str:
        """The local `unix://` URL the machine's engine answers at; MachineUnreachable (one
        sentence: which machine, why, the fix) when it cannot be reached."""
        with self._lock:
            if not self._open:
                self._connect()
                self._open = True
            return f"unix://{self.socket}"

    def _connect(self) -> None:
        if self._master_alive() and self.socket.exists():
            said = ping(self.socket, PING_TIMEOUT)
            if said == "ok":
                return
            if said != "timeout":  # the connection is alive; the engine behind it is not
                raise self._no_engine(said)
            self.close()  # a master over a dead link: start again, once
        elif self._master_alive():
            self._forward()
            self._check_engine()
            return
        self._start_master()
        self._forward()
        self._check_engine()

    def _master_alive(self) -> bool:
        if not self.control.exists():
            return False
        return run(self.argv("-O", "check"), check=False, timeout=5).returncode == 0

    def _start_master(self) -> None:
        self.log.write_text("")
        t0 = time.monotonic()
        try:
            done = run(self.argv("-M", "-N", "-f", "-E", str(self.log),
                                 "-o", f"ControlPersist={PERSIST}"),
                       check=False, timeout=MASTER_TIMEOUT)
        except EngineError:  # did not finish in time
            raise self._unreachable(f"{self.address.shown} did not complete an SSH login "
                                    f"within {time.monotonic() - t0:.1f} s") from None
        if done.returncode != 0:
            said = self.log.read_text(errors="replace") + done.stderr
            raise self._refused(said)

    def _forward(self) -> None:
        remote = self._remote_engine()
        parts = urlsplit(remote)
        if parts.scheme == "unix":
            spec = f"{self.socket}:{parts.path}"
        elif parts.scheme in ("tcp", "http"):
            spec = f"{self.socket}:{parts.hostname}:{parts.port or 2375}"
        else:
            raise MachineUnreachable(
                f"machine {self.machine}: its engine answers at {remote} there, which "
                "dockyard cannot forward over SSH", machine=self.machine, where=self.where,
                fix=f"set DOCKER_HOST on {self.address.destination} to a unix:// socket or "
                    "tcp:// address, or unset it")
        done = run(self.argv("-O", "forward", "-L", spec), check=False, timeout=10)
        if done.returncode != 0:
            raise self._unreachable(f"ssh could not forward the engine's socket "
                                    f"({_last(done.stderr)})")

    def _remote_engine(self) -> str:
        """Where the engine answers on the machine: its DOCKER_HOST, else the default
        socket (one session, once per connection)."""
        done = run(self.argv(command="printf '%s' \"${DOCKER_HOST:-" + REMOTE_DEFAULT + "}\""),
                   check=False, timeout=10)
        if done.returncode != 0:
            raise self._refused(done.stderr)
        return done.stdout.strip() or REMOTE_DEFAULT

    def _check_engine(self) -> None:
        said = ping(self.socket, PING_TIMEOUT * 3)
        if said != "ok":
            raise self._no_engine(said)

    def close(self) -> None:
        """End the master (and its forwarding); the next open() starts a new one."""
        with contextlib.suppress(EngineError):
            run(self.argv("-O", "exit"), check=False, timeout=5)
        self.socket.unlink(missing_ok=True)
        self._open = False

    # -- what went wrong, in one sentence ------------------------------------------------------

    def _unreachable(self, why: str) -> MachineUnreachable:
        return MachineUnreachable(
            f"machine {self.machine} is unreachable: {why}", machine=self.machine,
            where=self.where,
            fix=f"check that `ssh {self.address.destination} docker info` works from here, "
                f"or correct machines.{self.machine}.engine")

    def _no_engine(self, said: str) -> MachineUnreachable:
        return MachineUnreachable(
            f"machine {self.machine} is unreachable: SSH to {self.address.shown} works, but "
            f"no Docker engine answers there ({said})", machine=self.machine,
            where=self.where,
            fix=f"start the engine on {self.address.host} (`ssh {self.address.destination} "
                "docker info` says why it does not answer)")

    def _refused(self, said: str) -> MachineUnreachable:
        a, m = self.address, self.machine
        if "REMOTE HOST IDENTIFICATION HAS CHANGED" in said:
            return MachineUnreachable(
                f"machine {m}: the SSH host key of {a.host} has changed since it was last "
                "accepted here", machine=m, where=self.where,
                fix=f"if the machine was reinstalled, run `ssh-keygen -R {a.host}` and "
                    f"accept its new key with `ssh {a.destination}`; else do not connect")
        if "Host key verification failed" in said or "No ED25519 host key" in said \
                or "host key is known" in said:
            return MachineUnreachable(
                f"machine {m}: the SSH host key of {a.host} is not known here", machine=m,
                where=self.where,
                fix=f"check it and accept it once with `ssh {a.destination}` (or add it to "
                    "known_hosts with ssh-keyscan), then run again")
        if "Permission denied" in said or "Too many authentication failures" in said:
            return MachineUnreachable(
                f"machine {m}: {a.shown} refused the SSH key offered "
                f"({_last(said, 'Permission denied')})", machine=m, where=self.where,
                fix=f"add your public key to {a.destination}'s ~/.ssh/authorized_keys "
                    f"(`ssh-copy-id {a.destination}`), or name the key for {a.host} in "
                    "~/.ssh/config (IdentityFile)")
        return self._unreachable(_last(said))


def _last(text: str, containing: str = "") -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if containing:
        lines = [line for line in lines if containing in line] or lines
    return lines[-1] if lines else "ssh said nothing"


def ping(path: Path, timeout: float) -> str:
    """`GET /_ping` on a local engine socket: "ok", "timeout", or what went wrong."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(str(path))
            s.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            reply = s.recv(64)
    except TimeoutError:
        return "timeout"
    except ConnectionResetError:
        return "its socket refused the connection"
    except OSError as exc:
        return exc.strerror or str(exc)
    if not reply:
        return "its socket refused the connection"
    if reply.startswith((b"HTTP/1.0 200", b"HTTP/1.1 200")):
        return "ok"
    return reply.split(b"\r\n", 1)[0].decode(errors="replace")
