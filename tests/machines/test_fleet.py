"""A fleet on three machines, each its own engine reached over SSH only (harness.py).

`up` converges all three, level by level across them; a service calls another machine's by
its name (a real HTTP request: web on a -> api on b -> store on c); `ps` shows all three;
a machine whose engine stopped is `unreachable` within 5 s and the others still answer; a
wrong key or an unknown host key is one sentence naming the machine; `down` cleans all
three."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.machines.harness import Harness

pytestmark = pytest.mark.engine

# api answers GET / with what it fetched from STORE_URL (the store on another machine).
API = ("import http.server, os, urllib.request\n"
       "class H(http.server.BaseHTTPRequestHandler):\n"
       "    def do_GET(self):\n"
       "        body = urllib.request.urlopen(os.environ['STORE_URL'], timeout=5).read()\n"
       "        self.send_response(200); self.end_headers()\n"
       "        self.wfile.write(b'api on b got: ' + body)\n"
       "http.server.HTTPServer(('', 8001), H).serve_forever()\n")

# The three machines of a fleet on the harness (a str.format template: name, a, b, c).
MACHINES = """\
fleet: {name}
machines:
  a: {{engine: "{a.engine_url}", host: {a.address}}}
  b: {{engine: "{b.engine_url}", host: {b.address}}}
  c: {{engine: "{c.engine_url}", host: {c.address}}}
"""
FLEET = MACHINES + """\
services:
  store:
    image: {image}
    init: true  # python3 as PID 1 ignores SIGTERM: down would wait 10 s
    machine: c
    command: [python3, -c, "{store}"]
    ports: {{http: 8000}}
    health: {{cmd: [python3, -c, "{probe}8000/')"], interval: 1s, retries: 30}}
  api:
    image: {image}
    init: true
    machine: b
    command: [python3, -c, {api}]
    env: {{STORE_URL: "http://store:8000/"}}
    ports: {{http: 8001}}
    depends_on: [store]
    health: {{cmd: [python3, -c, "{probe}8001/')"], interval: 1s, retries: 30}}
  web:
    image: {image}
    init: true
    machine: a
    command: [python3, -m, http.server, "8002"]
    env: {{API_URL: "http://api:8001/"}}
    ports: {{http: 8002}}
    depends_on: [api]
    health: {{cmd: [python3, -c, "{probe}8002/')"], interval: 1s, retries: 30}}
  side:
    image: {image}
    init: true
    machine: c
    command: [python3, -m, http.server, "8003"]
    ports: {{http: 8003}}
    health: {{cmd: [python3, -c, "{probe}8003/')"], interval: 1s, retries: 30}}
"""
STORE = ("import http.server; h = type('H', (http.server.BaseHTTPRequestHandler,), "
         "{'do_GET': lambda s: (s.send_response(200), s.end_headers(), "
         "s.wfile.write(b'store on c'))}); "
         "http.server.HTTPServer(('', 8000), h).serve_forever()")
# The images have python3 and neither curl nor wget: the probe is a python3 command.
PROBE = "import urllib.request as u; u.urlopen('http://127.0.0.1:"


def dockyard(*args: str, cwd: Path, env: dict[str, str], timeout: float = 300
             ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dockyard", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=cwd,
                          env={**os.environ, "COLUMNS": "200", **env})


@pytest.fixture(scope="module")
def fleet(machines: Harness, machine_image: str, tmp_path_factory: pytest.TempPathFactory
          ) -> tuple[Path, dict[str, str], str]:
    a, b, c = machines.machines
    name = f"hma{machines.prefix[2:]}"
    folder = tmp_path_factory.mktemp("hma-fleet")
    (folder / "fleet.yaml").write_text(FLEET.format(
        name=name, a=a, b=b, c=c, image=machine_image, api=json.dumps(API), store=STORE,
        probe=PROBE))
    env = {**machines.env(), "DOCKYARD_STATE": str(folder / "state")}
    # The harness outlives modules: close the SSH masters earlier modules' commands left
    # (kept 5 minutes), so that this module's logins are its own.
    for ctl in Path(env["XDG_RUNTIME_DIR"]).glob("dockyard-ssh-*/*.ctl"):
        subprocess.run(["ssh", "-F", str(machines.ssh_config), "-o", f"ControlPath={ctl}",
                        "-O", "exit", "machine"], capture_output=True, timeout=10)
    LOGINS.update({m.name: logins(m) for m in machines.machines})
    return folder, env, name


LOGINS: dict[str, int] = {}  # SSH logins per machine before this module's first command


def logins(m: object) -> int:
    return (m.root / "sshd.log").read_text().count("Accepted publickey")  # type: ignore[attr-defined]


def containers(m: object, project: str) -> list[dict[str, str]]:
    out = m.docker("ps", "-a", "--filter",  # type: ignore[attr-defined]
                   f"label=com.docker.compose.project={project}",
                   "--format", "{{json .}}").stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_hma_up_converges_all_three_and_names_work_across_machines(
        machines: Harness, fleet: tuple[Path, dict[str, str], str]) -> None:
    folder, env, name = fleet
    t0 = time.monotonic()
    up = dockyard("up", cwd=folder, env=env)
    assert up.returncode == 0, up.stdout + up.stderr
    took = time.monotonic() - t0
    assert "up and healthy on a, b, c" in up.stdout, up.stdout
    for m, want in zip(machines.machines, (["web"], ["api"], ["side", "store"]), strict=True):
        found = containers(m, name)
        assert sorted(c["Labels"].split("com.docker.compose.service=")[1].split(",")[0]
                      for c in found) == want
        assert all(c["State"] == "running" for c in found)
    # store (c) was healthy before api (b) started, and api before web (a).
    assert up.stderr.index("store") < up.stderr.index("api") < up.stderr.index("web"), up.stderr
    # The call by name, end to end: web's container on a -> api on b -> store on c.
    web = next(c["Names"] for c in containers(machines["a"], name))
    said = machines["a"].docker(
        "exec", web, "python3", "-c",
        "import urllib.request, os; print(urllib.request.urlopen(os.environ['API_URL'], "
        "timeout=10).read().decode())", check=False)
    assert said.returncode == 0, said.stderr
    assert said.stdout.strip() == "api on b got: store on c"
    again = dockyard("up", cwd=folder, env=env)
    assert again.returncode == 0, again.stderr
    assert "nothing changed" in again.stdout
    print(f"up on three machines: {took:.1f} s")


def test_hma_ps_shows_all_three(machines: Harness,
                                fleet: tuple[Path, dict[str, str], str]) -> None:
    folder, env, _ = fleet
    t0 = time.monotonic()
    ps = dockyard("ps", "--format", "json", cwd=folder, env=env)
    took = time.monotonic() - t0
    assert ps.returncode == 0, ps.stderr
    rows = {r["service"]: r for r in json.loads(ps.stdout)}
    assert {r["machine"] for r in rows.values()} == {"a", "b", "c"}
    assert all(r["state"] == "running" and r["health"] == "healthy" for r in rows.values()), rows
    print(f"warm ps on three machines: {took:.1f} s")  # the goal (< 3 s): benchmarks/machines.py
    only = dockyard("-m", "b", "-m", "c", "ps", "--format", "json", cwd=folder, env=env)
    assert only.returncode == 0, only.stderr
    assert {r["machine"] for r in json.loads(only.stdout)} == {"b", "c"}
    # Two ups and three ps later: one SSH login per machine, the connection kept between
    # commands (ControlPersist); every call was a channel of it (the sshds allow 4 sessions).
    for m in machines.machines:
        made = logins(m) - LOGINS[m.name]
        assert made == 1, f"machine {m.name}: {made} SSH logins"


def config_hashes(m: object, project: str) -> dict[str, str]:
    """service -> the compose config hash of its container on machine `m`."""
    out = {}
    for c in containers(m, project):
        labels = dict(kv.split("=", 1) for kv in c["Labels"].split(",") if "=" in kv)
        out[labels["com.docker.compose.service"]] = labels["com.docker.compose.config-hash"]
    return out


def test_hma_an_upgrade_across_machines_goes_forward_and_back_as_one(
        machines: Harness, fleet: tuple[Path, dict[str, str], str]) -> None:
    """store (c) and api (b) change in one upgrade: a failing api takes store on c back too
    (exit 6); a kill between them leaves both machines pending, and a rollback from b alone
    takes c back as well; a good one changes both; web (a) is never touched."""
    folder, env, name = fleet
    text = (folder / "fleet.yaml").read_text()
    newer = text.replace("    ports: {http: 8000}\n", "    ports: {http: 8000}\n"
                         "    env: {VERSION: \"2\"}\n")
    good = newer.replace('env: {STORE_URL: "http://store:8000/"}',
                         'env: {STORE_URL: "http://store:8000/", VERSION: "2"}')
    broken = newer.replace("8001/')\"], interval: 1s, retries: 30}",
                           "8009/')\"], interval: 1s, retries: 4}")
    assert good != newer != broken != text
    (folder / "good.yaml").write_text(good)
    (folder / "broken.yaml").write_text(broken)
    a, b, c = machines.machines

    def now() -> dict[str, str]:
        return {**config_hashes(b, name), **config_hashes(c, name)}

    before, web = now(), containers(a, name)
    t0 = time.monotonic()
    failed = dockyard("-f", "broken.yaml", "upgrade", cwd=folder, env=env)
    took = time.monotonic() - t0
    assert failed.returncode == 6, failed.stdout + failed.stderr
    assert "upgrade rolled back: " in failed.stderr and "api" in failed.stderr
    assert " on b (at " in failed.stderr, failed.stderr
    assert "on b: api on " in failed.stderr and "on c: store on " in failed.stderr
    assert failed.stderr.index("recreate store: done") < failed.stderr.index(
        "recreate api: failed"), failed.stderr
    assert now() == before  # store on c went back too, with api on b
    print(f"failed upgrade across b and c, rolled back: {took:.1f} s")

    killed = dockyard("-f", "good.yaml", "upgrade", cwd=folder,
                      env={**env, "DOCKYARD_KILL_AT": "upgrade.gate:2"})
    assert killed.returncode == -9, killed.stdout + killed.stderr
    assert config_hashes(c, name)["store"] != before["store"]  # c went forward, b was cut
    ps = dockyard("-f", "good.yaml", "ps", cwd=folder, env=env)
    assert "(one upgrade with c: " in ps.stderr and "(one upgrade with b: " in ps.stderr, \
        ps.stderr
    refused = dockyard("-f", "good.yaml", "up", cwd=folder, env=env)
    assert refused.returncode == 8, refused.stderr  # up would mix the fleet
    back = dockyard("-f", "good.yaml", "-m", "b", "rollback", cwd=folder, env=env)
    assert back.returncode == 0, back.stdout + back.stderr
    assert now() == before  # rolled back from b alone: c's part went back as well

    up = dockyard("-f", "good.yaml", "upgrade", cwd=folder, env=env)
    assert up.returncode == 0, up.stdout + up.stderr
    assert "upgraded on b, c" in up.stdout and "api (b)" in up.stdout, up.stdout
    after = now()
    assert after["store"] != before["store"] and after["api"] != before["api"]
    assert after["side"] == before["side"]
    assert [x["ID"] for x in containers(a, name)] == [x["ID"] for x in web]
    # The module's other tests run the fleet as fleet.yaml has it.
    reset = dockyard("up", cwd=folder, env=env)
    assert reset.returncode == 0, reset.stdout + reset.stderr
    assert now() == before


def test_hma_a_stopped_engine_is_unreachable_quickly_and_up_converges_again(
        machines: Harness, fleet: tuple[Path, dict[str, str], str]) -> None:
    folder, env, name = fleet
    b = machines["b"]
    b.stop_engine()
    try:
        # What dockyard takes to start and read the manifest, asking no machine (seconds on
        # a busy 2-core host): the 5 s are for reaching the machines and saying so.
        t0 = time.monotonic()
        assert dockyard("plan", cwd=folder, env=env).returncode == 0
        baseline = time.monotonic() - t0
        t0 = time.monotonic()
        ps = dockyard("ps", "--format", "json", cwd=folder, env=env)
        took = time.monotonic() - t0
        assert ps.returncode == 3, ps.stdout + ps.stderr
        print(f"ps with machine b's engine stopped: {took:.1f} s (plan: {baseline:.1f} s)")
        assert took - baseline < 5, \
            f"reporting the stopped machine took {took:.1f} s (plan alone: {baseline:.1f} s)"
        rows = {r["service"]: r for r in json.loads(ps.stdout)}
        assert rows["api"]["state"] == "unreachable"
        assert rows["store"]["health"] == rows["web"]["health"] == "healthy"
        error = [line for line in ps.stderr.splitlines() if line.startswith("error:")]
        assert len(error) == 1 and "machine b is unreachable" in error[0], ps.stderr
        assert "no Docker engine answers" in error[0]
        # up: the other machines are left as they are (up), b is named; exit non-zero.
        up = dockyard("up", cwd=folder, env=env)
        assert up.returncode == 3, up.stderr
        assert "machine b is unreachable" in up.stderr
        assert "up and healthy: a, c; nothing running was stopped" in up.stderr, up.stderr
        assert len(containers(machines["a"], name)) == 1
    finally:
        b.start_engine()
    up = dockyard("up", cwd=folder, env=env)
    assert up.returncode == 0, up.stdout + up.stderr
    ps = dockyard("ps", "--format", "json", cwd=folder, env=env)
    assert ps.returncode == 0 and all(r["health"] == "healthy" for r in json.loads(ps.stdout))


def test_hma_a_wrong_key_or_host_key_is_one_sentence(
        machines: Harness, fleet: tuple[Path, dict[str, str], str], tmp_path: Path) -> None:
    folder, env, _ = fleet
    stranger = tmp_path / "stranger"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(stranger)],
                   check=True)
    wrong_key = machines.ssh_config.read_text().replace(str(machines.client_key), str(stranger))
    (tmp_path / "wrong_key").write_text(wrong_key)
    (tmp_path / "no_hosts").write_text("")
    unknown = machines.ssh_config.read_text().replace(
        str(machines.root / "known_hosts"), str(tmp_path / "no_hosts"))
    (tmp_path / "unknown_host").write_text(unknown)
    for config, said in (("wrong_key", "refused the SSH key"),
                         ("unknown_host", "is not known here")):
        ps = dockyard("-m", "c", "ps", cwd=folder,
                      env={**env, "DOCKYARD_SSH_CONFIG": str(tmp_path / config)})
        assert ps.returncode == 3, ps.stderr
        lines = [line for line in ps.stderr.splitlines() if line.strip()]
        # error: fleet.yaml:5:7: machine c: ... (fix: ...): where the manifest names it
        assert len(lines) == 1 and lines[0].startswith("error: fleet.yaml:"), ps.stderr
        assert ": machine c: " in lines[0], lines[0]
        assert said in lines[0] and "fix:" in lines[0], lines[0]


def test_hma_logs_of_every_machine(fleet: tuple[Path, dict[str, str], str]) -> None:
    folder, env, _ = fleet
    logs = dockyard("logs", "--tail", "20", cwd=folder, env=env)
    assert logs.returncode == 0, logs.stderr
    # Each server logs the requests of its health probes: lines from all three machines.
    for service in ("store", "api", "web", "side"):
        assert f"{service}-1" in logs.stdout and "GET /" in logs.stdout, \
            (service, logs.stdout[-2000:])
    one = dockyard("logs", "--tail", "5", "store", cwd=folder, env=env)
    assert one.returncode == 0 and "store-1" in one.stdout and "api-1" not in one.stdout, \
        one.stdout


DYING = """\
fleet: {name}
machines:
  a: {{engine: "{a.engine_url}", host: {a.address}}}
  b: {{engine: "{b.engine_url}", host: {b.address}}}
  c: {{engine: "{c.engine_url}", host: {c.address}}}
services:
  slow:  # on b, healthy only after a few seconds: b's engine stops meanwhile
    image: {image}
    init: true
    machine: b
    command: [python3, -c, "{slow}"]
    ports: {{http: 8010}}
    health: {{cmd: [python3, -c, "{probe}8010/')"], interval: 1s, retries: 60}}
  after:
    image: {image}
    init: true
    machine: a
    command: [python3, -m, http.server, "8011"]
    depends_on: [slow]
    health: {{cmd: [python3, -c, "{probe}8011/')"], interval: 1s, retries: 30}}
  free:
    image: {image}
    init: true
    machine: c
    command: [python3, -m, http.server, "8012"]
    health: {{cmd: [python3, -c, "{probe}8012/')"], interval: 1s, retries: 30}}
"""


SLOW = ("import time, http.server as h; time.sleep(4); "
        "h.HTTPServer(('', 8010), h.SimpleHTTPRequestHandler).serve_forever()")


def test_hma_a_machine_dying_mid_up_is_reported_and_a_rerun_converges(
        machines: Harness, machine_image: str, tmp_path: Path) -> None:
    a, b, c = machines.machines
    name = f"hmd{machines.prefix[2:]}"
    (tmp_path / "fleet.yaml").write_text(DYING.format(name=name, a=a, b=b, c=c,
                                                     image=machine_image, probe=PROBE,
                                                     slow=SLOW))
    env = {**os.environ, "COLUMNS": "200", **machines.env(),
           "DOCKYARD_STATE": str(tmp_path / "state")}
    try:
        up = subprocess.Popen([sys.executable, "-m", "dockyard", "up"], cwd=tmp_path, env=env,
                              text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert up.stderr is not None
        seen = []
        for line in up.stderr:  # level 0 starts on b and c at once
            seen.append(line)
            if "starting slow, free" in line:
                break
        else:
            raise AssertionError("".join(seen))
        b.stop_engine()
        out, err = up.communicate(timeout=120)
        said = "".join(seen) + err + out
        assert up.returncode == 3, said
        assert "machine b stopped answering" in said, said
        assert "after waits for slow" in said, said  # not started: it needs b's service
        assert "up and healthy: c" in said, said
        assert [x["State"] for x in containers(c, name)] == ["running"]  # left as it is
        assert containers(a, name) == [] or all(x["State"] == "created"
                                                for x in containers(a, name))
    finally:
        b.start_engine()
    again = dockyard("up", cwd=tmp_path, env=env)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "up and healthy on a, b, c" in again.stdout
    assert dockyard("down", cwd=tmp_path, env=env).returncode == 0


def test_hma_down_cleans_all_three(machines: Harness,
                                   fleet: tuple[Path, dict[str, str], str]) -> None:
    folder, env, name = fleet
    down = dockyard("down", cwd=folder, env=env)
    assert down.returncode == 0, down.stderr
    assert "down on a, b, c" in down.stdout
    for m in machines.machines:
        assert containers(m, name) == []
        nets = m.docker("network", "ls", "--filter", f"label=com.docker.compose.project={name}",
                        "-q").stdout.split()
        assert nets == []
