"""`machines.<m>.engine`: the forms the manifest accepts, and what an Engine makes of each
(SDK arguments, docker / compose argv, whether container IPs are reachable). Pure: no
engine is asked; the real local forms are exercised in tests/engine/test_up_steps.py."""

from __future__ import annotations

import pytest

from dockyard.engine.connection import DEFAULT_SOCKET, Endpoint, Engine, is_local_url
from dockyard.errors import ManifestError
from dockyard.manifest.load import loads


def fleet_text(engine: str) -> str:
    return f"""\
fleet: demo
machines:
  gpu:
    engine: "{engine}"
services:
  api: {{image: nginx}}
"""


def engine_of(engine: str) -> Engine:
    return Engine.for_machine(loads(fleet_text(engine), environ={}), "gpu")


def test_ssh_endpoint_goes_through_one_multiplexed_connection(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DOCKYARD_SSH_CONFIG", raising=False)
    engine = engine_of("ssh://deploy@titan:2222")
    assert engine.is_ssh and not engine.is_local
    assert engine.describe() == "ssh://deploy@titan:2222 (machines.gpu.engine)"
    tunnel = engine.tunnel
    assert tunnel.machine == "gpu" and tunnel.where is not None
    # The ssh program (so ~/.ssh/config, keys and agents apply), through the machine's one
    # control socket; short paths (a Unix socket's may not exceed 107 bytes).
    argv = tunnel.argv("-O", "check")
    assert argv[0] == "ssh" and "-F" not in argv
    assert f"ControlPath={tunnel.control}" in argv and "BatchMode=yes" in argv
    assert argv[-4:] == ["-p", "2222", "-O", "check"] or argv[-3:] == ["-O", "check",
                                                                        "deploy@titan"]
    assert argv[-1] == "deploy@titan" and argv[argv.index("-p") + 1] == "2222"
    assert tunnel.argv(command="true")[-2:] == ["deploy@titan", "true"]
    assert len(str(tunnel.socket)) < 100 and tunnel.socket.parent == tunnel.control.parent
    # Another ssh config (the test harness's) is another connection.
    monkeypatch.setenv("DOCKYARD_SSH_CONFIG", "/etc/dockyard/ssh_config")
    other = engine_of("ssh://deploy@titan:2222").tunnel
    assert other.argv()[1:3] == ["-F", "/etc/dockyard/ssh_config"]
    assert other.control != tunnel.control


def test_unreachable_names_the_endpoint_and_where_the_manifest_says_it() -> None:
    exc = engine_of("ssh://deploy@titan").unavailable()
    assert exc.exit_code == 3
    assert str(exc).startswith("fleet.yaml:4:5: no Docker engine answers at "
                               "ssh://deploy@titan (machines.gpu.engine)")
    assert "`ssh deploy@titan docker info`" in exc.fix
    tcp = engine_of("tcp://10.0.0.7:2375").unavailable()
    assert "no Docker engine answers at tcp://10.0.0.7:2375 (machines.gpu.engine)" in str(tcp)
    assert "correct machines.gpu.engine" in tcp.fix


def test_tcp_and_unix_endpoints() -> None:
    tcp = engine_of("tcp://10.0.0.7:2375")
    assert tcp.docker_argv() == ["docker", "--host", "tcp://10.0.0.7:2375"]
    assert tcp.sdk_kwargs() == {"base_url": "tcp://10.0.0.7:2375", "use_ssh_client": False}
    assert not tcp.is_local
    assert engine_of("tcp://127.0.0.1:2375").is_local
    sock = engine_of("unix:///run/user/1000/docker.sock")
    assert sock.compose_argv(None, ["c.yaml"]) == [
        "docker", "--host", "unix:///run/user/1000/docker.sock", "compose", "-f", "c.yaml"]
    assert sock.is_local


def test_a_context_goes_to_the_cli_by_name() -> None:
    engine = engine_of("titan-ctx")
    assert engine.endpoint.context == "titan-ctx"
    assert engine.docker_argv("pull", "x") == ["docker", "--context", "titan-ctx", "pull", "x"]
    assert engine.describe() == "docker context titan-ctx (machines.gpu.engine)"


def test_local_is_what_this_host_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    engine = engine_of("local")
    assert engine.docker_argv("ps") == ["docker", "ps"]
    assert engine.sdk_kwargs() == {}  # docker.from_env: DOCKER_HOST, TLS variables
    assert engine.describe() == f"{DEFAULT_SOCKET} (the default socket)"
    assert engine.is_local
    assert "install-engine.sh" in engine.unavailable().fix
    monkeypatch.setenv("DOCKER_HOST", "ssh://me@box")
    engine = Engine.local()
    assert engine.describe() == "ssh://me@box (DOCKER_HOST)"
    assert not engine.is_local
    assert engine.unavailable().where is None


def test_engines_are_not_shared_and_connect_only_when_asked() -> None:
    a, b = engine_of("tcp://10.0.0.7:2375"), engine_of("tcp://10.0.0.7:2375")
    assert a is not b and a._client is None and b._client is None


def test_default_is_local() -> None:
    fleet = loads("fleet: demo\nmachines:\n  box: {}\nservices:\n  a: {image: nginx}\n",
                  environ={})
    assert fleet.spec.machines["box"].engine == "local"
    assert Engine.for_machine(fleet, "box").endpoint.address == ""


@pytest.mark.parametrize(("written", "wrong"), [
    ("tcp://titan", "needs a port"),
    ("tcp://titan:99999", "not a number from 1 to 65535"),
    ("http://titan:2375", "has scheme http://"),
    ("unix://docker.sock", "absolute socket path"),
    ("ssh://deploy@titan/x", "more than host and port"),
    ("ssh://", "names no host"),
    ("my context", "not a URL or a docker context name"),
])
def test_a_bad_endpoint_is_located_and_explained(written: str, wrong: str) -> None:
    with pytest.raises(ManifestError) as caught:
        loads(fleet_text(written), environ={})
    message = str(caught.value)
    assert message.startswith("fleet.yaml:4:5: machines.gpu.engine: "), message
    assert wrong in message and "ssh://user@host[:port]" in message


@pytest.mark.parametrize("url", ["unix:///var/run/docker.sock", "tcp://localhost:2375",
                                 "tcp://[::1]:2375", "npipe:////./pipe/docker_engine"])
def test_local_urls(url: str) -> None:
    assert is_local_url(url)


@pytest.mark.parametrize("url", ["tcp://10.1.2.3:2375", "ssh://me@127.0.0.1", ""])
def test_remote_urls(url: str) -> None:
    assert not is_local_url(url)


def test_endpoint_urls() -> None:
    assert Endpoint("tcp://h:1", "x").url == "tcp://h:1"
    assert Endpoint("ctx", "x").url == ""
