"""Three (or more) machines on this host, each its own Docker engine reached only over SSH.

Each machine is a network namespace holding its own `dockerd` (own data root, exec root,
pid file, managed containerd, cgroup parent) and its own `sshd` (Debian's openssh-server)
listening on the namespace's address. dockyard reaches a machine only as
`ssh://root@<address>`, with a client key and known_hosts made here, named by an ssh
config file the harness writes (`Harness.ssh_config`, passed to dockyard as
`DOCKYARD_SSH_CONFIG`; ssh ignores $HOME, so the user's ~/.ssh is never read or changed).
The engine's own socket (`Machine.socket`) is for the test's set-up and assertions only.

Why network namespaces and not docker-in-docker: a dockerd in a namespace starts in about
half a second, needs no image to be built first (no privileged container, no nested
overlayfs, no Debian `docker.io` image to bootstrap), shares the host's kernel, binaries and
page cache (2 cores here), and `docker save | load` between engines is a local pipe. The
machines still differ where it matters: separate engines, data roots, addresses,
iptables and sshds, and stopping one machine's engine (or cutting its link) leaves the
others running. `ip netns exec` is not used: it remounts /sys, and dockerd then fails with
"Devices cgroup isn't mounted"; `nsenter --net=/run/netns/NAME` enters the network
namespace only.

The network: a `hub` namespace holds a bridge; every machine namespace and the host have a
veth on it, with addresses on a /24 chosen here (10.X.Y.0/24, one that no host route
uses). The bridge lives in the hub, not in the host's namespace, because bridged traffic
there would pass the host's iptables FORWARD chain (br_netfilter is loaded and the host's
dockerd sets its policy to DROP); the host's docker0 and iptables are never touched. The
only link added to the host is `<prefix>-h`.

`Harness.stop()` tears everything down (dockerds, their containerds and shims, sshds,
mounts under the harness's folder, namespaces, the host link), also after a failure, and
`sweep(prefix)` removes what a killed run left.

    with Harness("hma1") as h:
        a, b, c = h.machines
        a.engine_url            # "ssh://root@10.231.7.11"
        a.docker("ps")          # straight to the engine's socket (set-up, assertions)
        a.stop_engine(); a.start_engine()
        h.env()                 # {"DOCKYARD_SSH_CONFIG": ".../ssh_config"}
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

NAMES = ("a", "b", "c", "d", "e", "f")
NEEDS = ("ip", "nsenter", "dockerd", "docker", "ssh", "ssh-keygen")
SSHD = "/usr/sbin/sshd"


def missing_programs() -> list[str]:
    """What this host lacks to build the harness (sshd: `apt-get install openssh-server`,
    as scripts/install-engine.sh --machines does)."""
    gone = [p for p in NEEDS if shutil.which(p) is None]
    if not os.path.exists(SSHD):
        gone.append("sshd (openssh-server)")
    if os.geteuid() != 0:
        gone.append("root")
    return gone


def _run(argv: Sequence[str], *, check: bool = True, timeout: float = 60,
         input: bytes | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(list(argv), capture_output=True, timeout=timeout, input=input)
    out = proc.stdout.decode(errors="replace")
    err = proc.stderr.decode(errors="replace")
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}): {err.strip()}")
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def _used_subnets() -> set[tuple[int, int]]:
    out = _run(["ip", "-4", "route", "show", "table", "all"], check=False).stdout
    used = set()
    for word in out.split():
        parts = word.split("/")[0].split(".")
        if len(parts) == 4 and parts[0] == "10" and all(p.isdigit() for p in parts):
            used.add((int(parts[1]), int(parts[2])))
    return used


def _pick_subnet() -> tuple[int, int]:
    used = _used_subnets()
    rng = random.Random()
    for _ in range(200):
        pick = (rng.randint(200, 250), rng.randint(1, 254))
        if pick not in used:
            return pick
    raise RuntimeError("no free 10.x.y.0/24 for the machines' network")


@dataclass
class Machine:
    """One machine: a namespace with its dockerd and sshd, at `address`."""

    name: str
    netns: str
    address: str
    root: Path
    harness: Harness = field(repr=False)
    dockerd: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    sshd: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def hub_link(self) -> str:
        """The machine's end on the hub's bridge (`disconnect` sets it down)."""
        return f"to-{self.name}"

    @property
    def socket(self) -> Path:
        """The engine's own socket (in /run: the path must stay short)."""
        return Path("/run") / f"{self.netns}.sock"

    @property
    def docker_host(self) -> str:
        return f"unix://{self.socket}"

    @property
    def engine_url(self) -> str:
        """What a manifest's `machines.<m>.engine` says for this machine."""
        return f"ssh://root@{self.address}"

    @property
    def ssh_target(self) -> str:
        return f"root@{self.address}"

    def docker(self, *args: str, check: bool = True, timeout: float = 120,
               input: bytes | None = None) -> subprocess.CompletedProcess[str]:
        """`docker` straight at this machine's socket (for set-up and assertions)."""
        return _run(["docker", "--host", self.docker_host, *args], check=check,
                    timeout=timeout, input=input)

    def nsenter(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """A program inside the machine's network namespace."""
        return _run(["nsenter", f"--net=/run/netns/{self.netns}", *argv], check=check)

    # -- the engine -------------------------------------------------------------------------

    def start_engine(self, timeout: float = 30) -> None:
        """Start (again) this machine's dockerd and wait until it answers."""
        if self.engine_running():
            return
        for sub in ("data", "exec"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        pidfile = self.root / "dockerd.pid"
        pidfile.unlink(missing_ok=True)
        self.socket.unlink(missing_ok=True)
        log = (self.root / "dockerd.log").open("ab")
        self.dockerd = subprocess.Popen(
            ["nsenter", f"--net=/run/netns/{self.netns}", "dockerd",
             "--host", self.docker_host, "--data-root", str(self.root / "data"),
             "--exec-root", str(self.root / "exec"), "--pidfile", str(pidfile),
             "--cgroup-parent", f"/{self.netns}", "--shutdown-timeout", "2",
             "--userland-proxy=false"],
            stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.dockerd.poll() is not None:
                raise RuntimeError(f"dockerd of machine {self.name} exited "
                                   f"({self.dockerd.returncode}); see {self.root}/dockerd.log")
            if self.engine_answers():
                return
            time.sleep(0.1)
        raise RuntimeError(f"dockerd of machine {self.name} did not answer in {timeout} s")

    def engine_answers(self) -> bool:
        try:
            return self.docker("version", "--format", "{{.Server.Version}}", check=False,
                               timeout=5).returncode == 0
        except subprocess.TimeoutExpired:
            return False

    def engine_running(self) -> bool:
        return self.dockerd is not None and self.dockerd.poll() is None

    def stop_engine(self, timeout: float = 20) -> None:
        """Stop this machine's dockerd (its containers stop with it); sshd keeps running, so
        the machine answers SSH and its engine does not."""
        proc, self.dockerd = self.dockerd, None
        if proc is None or proc.poll() is not None:
            return
        _stop(proc, timeout)
        self.socket.unlink(missing_ok=True)

    # -- the link ---------------------------------------------------------------------------

    def disconnect(self) -> None:
        """Cut the machine off the network (its link down): SSH to it no longer answers."""
        _run(["ip", "-n", self.harness.hub, "link", "set", self.hub_link, "down"])

    def reconnect(self) -> None:
        _run(["ip", "-n", self.harness.hub, "link", "set", self.hub_link, "up"])

    # -- images -----------------------------------------------------------------------------

    def has_image(self, ref: str) -> str:
        """The image ID `ref` names on this machine, "" when absent."""
        found = self.docker("image", "inspect", "--format", "{{.Id}}", ref, check=False)
        return found.stdout.strip() if found.returncode == 0 else ""

    def load_images(self, *refs: str) -> list[str]:
        """Copy images from the host's engine (`docker save | docker load`), skipping those
        this machine already has with the same ID; returns the refs copied."""
        copied = []
        for ref in refs:
            want = _run(["docker", "image", "inspect", "--format", "{{.Id}}", ref]).stdout.strip()
            if self.has_image(ref) == want:
                continue
            save = subprocess.Popen(["docker", "save", ref], stdout=subprocess.PIPE)
            load = subprocess.run(["docker", "--host", self.docker_host, "load"],
                                  stdin=save.stdout, capture_output=True, timeout=600)
            assert save.stdout is not None
            save.stdout.close()
            if save.wait() != 0 or load.returncode != 0:
                raise RuntimeError(f"copying {ref} to machine {self.name} failed: "
                                   f"{load.stderr.decode(errors='replace').strip()}")
            copied.append(ref)
        return copied

    # -- sshd -------------------------------------------------------------------------------

    def _write_sshd_config(self) -> Path:
        key = self.root / "ssh_host_ed25519_key"
        if not key.exists():
            _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"{self.name}-host",
                  "-f", str(key)])
        config = self.root / "sshd_config"
        config.write_text("\n".join([
            f"ListenAddress {self.address}",
            "Port 22",
            f"HostKey {key}",
            f"PidFile {self.root / 'sshd.pid'}",
            f"AuthorizedKeysFile {self.harness.root / 'authorized_keys'}",
            "PermitRootLogin prohibit-password",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "UsePAM no",
            "StrictModes no",
            "UseDNS no",
            "MaxSessions 10",
            "MaxStartups 50:30:100",
            # The session's `docker` (and dockyard's lookup of the engine's socket) must reach
            # this machine's dockerd, not the host's.
            f"SetEnv DOCKER_HOST={self.docker_host}",
            "LogLevel VERBOSE",
            "",
        ]))
        return config

    def start_sshd(self) -> None:
        config = self._write_sshd_config()
        Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege separation folder
        self.sshd = subprocess.Popen(
            ["nsenter", f"--net=/run/netns/{self.netns}", SSHD, "-D", "-f", str(config),
             "-E", str(self.root / "sshd.log")],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True)

    def host_key_line(self) -> str:
        pub = (self.root / "ssh_host_ed25519_key.pub").read_text().split()
        return f"{self.address} {pub[0]} {pub[1]}"

    def ssh_answers(self) -> bool:
        return _run(["ssh", "-F", str(self.harness.ssh_config), "-o", "ConnectTimeout=2",
                     self.ssh_target, "true"], check=False, timeout=10).returncode == 0


def _stop(proc: subprocess.Popen[bytes], timeout: float) -> None:
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        proc.wait(10)


class Harness:
    """`count` machines named a, b, c…, under /tmp/<prefix>, on 10.X.Y.0/24."""

    def __init__(self, prefix: str, count: int = 3, root: Path | None = None) -> None:
        if not prefix.isalnum() or len(prefix) > 10:
            raise ValueError("prefix: up to 10 letters and digits (it names links)")
        self.prefix = prefix
        self.root = root or Path("/tmp") / f"dyh-{prefix}"
        self.hub = f"{prefix}-hub"
        self.host_link = f"{prefix}-h"
        x, y = _pick_subnet()
        self.subnet = f"10.{x}.{y}"
        self.host_address = f"{self.subnet}.1"
        self.machines = [Machine(name, f"{prefix}-{name}", f"{self.subnet}.{11 + i}",
                                 self.root / name, self)
                         for i, name in enumerate(NAMES[:count])]

    def __getitem__(self, name: str) -> Machine:
        return next(m for m in self.machines if m.name == name)

    def __enter__(self) -> Harness:
        self.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    @property
    def ssh_config(self) -> Path:
        """An ssh config for the machines: the test's client key and known hosts."""
        return self.root / "ssh_config"

    @property
    def client_key(self) -> Path:
        return self.root / "client_key"

    def env(self) -> dict[str, str]:
        """Environment for dockyard (and `ssh -F`) to reach the machines."""
        return {"DOCKYARD_SSH_CONFIG": str(self.ssh_config)}

    def load_images(self, refs: Sequence[str], on: Sequence[Machine] | None = None) -> None:
        """Copy images from the host's engine into machines (all by default), in parallel,
        each only where its ID is not there yet."""
        from concurrent.futures import ThreadPoolExecutor

        targets = list(on or self.machines)
        with ThreadPoolExecutor(max_workers=len(targets)) as pool:
            list(pool.map(lambda m: m.load_images(*refs), targets))

    def ssh_command(self) -> list[str]:
        return ["ssh", "-F", str(self.ssh_config)]

    # -- start ------------------------------------------------------------------------------

    def start(self) -> None:
        """Make the network, keys, sshds and engines; on any failure tear it all down."""
        sweep(self.prefix)
        try:
            self._network()
            self._keys()
            for m in self.machines:
                m.root.mkdir(parents=True, exist_ok=True)
                m.start_sshd()
            for m in self.machines:
                m.start_engine()
            self._wait_ssh()
        except BaseException:
            self.stop()
            raise

    def _network(self) -> None:
        ip = ["ip"]
        _run([*ip, "netns", "add", self.hub])
        _run([*ip, "-n", self.hub, "link", "set", "lo", "up"])
        _run([*ip, "-n", self.hub, "link", "add", "br0", "type", "bridge"])
        _run([*ip, "-n", self.hub, "link", "set", "br0", "up"])
        # The host's own link to the machines' network.
        _run([*ip, "link", "add", "name", self.host_link, "type", "veth", "peer", "name", "host",
              "netns", self.hub])
        _run([*ip, "-n", self.hub, "link", "set", "host", "master", "br0", "up"])
        _run([*ip, "addr", "add", f"{self.host_address}/24", "dev", self.host_link])
        _run([*ip, "link", "set", self.host_link, "up"])
        for m in self.machines:
            _run([*ip, "netns", "add", m.netns])
            _run([*ip, "-n", m.netns, "link", "set", "lo", "up"])
            _run([*ip, "-n", self.hub, "link", "add", "name", m.hub_link, "type", "veth",
                  "peer", "name", "eth0", "netns", m.netns])
            _run([*ip, "-n", self.hub, "link", "set", m.hub_link, "master", "br0", "up"])
            _run([*ip, "-n", m.netns, "addr", "add", f"{m.address}/24", "dev", "eth0"])
            _run([*ip, "-n", m.netns, "link", "set", "eth0", "up"])

    def _keys(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"{self.prefix}-client",
              "-f", str(self.client_key)])
        (self.root / "authorized_keys").write_text(
            Path(f"{self.client_key}.pub").read_text())
        for m in self.machines:
            m.root.mkdir(parents=True, exist_ok=True)
            m._write_sshd_config()  # makes the host key
        (self.root / "known_hosts").write_text(
            "".join(m.host_key_line() + "\n" for m in self.machines))
        self.ssh_config.write_text("\n".join([
            f"Host {self.subnet}.*",
            "  User root",
            f"  IdentityFile {self.client_key}",
            "  IdentitiesOnly yes",
            f"  UserKnownHostsFile {self.root / 'known_hosts'}",
            "  StrictHostKeyChecking yes",
            "  BatchMode yes",
            "",
        ]))
        self.ssh_config.chmod(0o600)

    def _wait_ssh(self, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        for m in self.machines:
            while not m.ssh_answers():
                if time.monotonic() > deadline:
                    raise RuntimeError(f"sshd of machine {m.name} does not answer; see "
                                       f"{m.root}/sshd.log")
                time.sleep(0.1)

    # -- stop -------------------------------------------------------------------------------

    def stop(self) -> None:
        """Tear everything down; never raises (it runs after failures)."""
        for m in self.machines:
            with contextlib.suppress(Exception):
                m.stop_engine()
            if m.sshd is not None:
                with contextlib.suppress(Exception):
                    _stop(m.sshd, 5)
                m.sshd = None
        sweep(self.prefix)


def _pids_under(root: Path) -> Iterator[int]:
    """Processes whose command line names a path under `root` (dockerd, containerd, shims,
    sshd of the harness): every one the harness started, and only those."""
    needle = str(root).encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if needle + b"/" in cmdline or cmdline.endswith(needle):
            yield int(entry.name)


def sweep(prefix: str) -> None:
    """Remove what a harness with this prefix left: processes, mounts, namespaces, the host
    link, sockets and its folder. Safe to run when nothing is there."""
    root = Path("/tmp") / f"dyh-{prefix}"
    for sig in (signal.SIGTERM, signal.SIGKILL):
        pids = list(_pids_under(root))
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + 10
        while pids and time.monotonic() < deadline:
            pids = [p for p in pids if Path(f"/proc/{p}").exists()
                    and "zombie" not in _state(p)]
            time.sleep(0.1)
    mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
    for point in sorted((p for p in mounts if p.startswith(f"{root}/")), key=len,
                        reverse=True):
        _run(["umount", "-l", point], check=False)
    netns = _run(["ip", "netns", "list"], check=False).stdout.split("\n")
    for line in netns:
        name = line.split(" ")[0]
        if name == f"{prefix}-hub" or (name.startswith(f"{prefix}-")
                                        and name[len(prefix) + 1:] in NAMES):
            _run(["ip", "netns", "delete", name], check=False)
    _run(["ip", "link", "delete", f"{prefix}-h"], check=False)
    for name in NAMES:
        Path(f"/run/{prefix}-{name}.sock").unlink(missing_ok=True)
    shutil.rmtree(root, ignore_errors=True)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/status").read_text().split("State:")[1].split("\n")[0]
    except (OSError, IndexError):
        return "zombie"


if __name__ == "__main__":  # python tests/machines/harness.py sweep PREFIX
    import sys

    if len(sys.argv) == 3 and sys.argv[1] == "sweep":
        sweep(sys.argv[2])
    else:
        sys.exit("usage: harness.py sweep PREFIX")
