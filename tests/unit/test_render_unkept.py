"""What Kubernetes and Swarm keep of a service's container settings, and what they say they lose
(render/unkept.py): `extra_hosts` is kept where the target can (hostAliases, Swarm's
extra_hosts), every other setting either rendered or a located `lost` line; depends_on
conditions are said by both."""

from __future__ import annotations

from ruamel.yaml import YAML

from dockyard.manifest.load import Fleet, loads
from dockyard.plan import Plan, plan
from dockyard.render.kube import render_kubernetes
from dockyard.render.swarm import render_swarm

SAFE = YAML(typ="safe")
FLEET = """\
fleet: hna-unkept
machines:
  a: {host: 10.0.0.1}
services:
  api:
    image: ghcr.io/x/api:1.0
    extra_hosts: {license: 10.0.0.9, mirror: 10.0.0.9, gateway: host-gateway}
    hostname: api-box
    cap_drop: [ALL]
    depends_on: {db: {condition: healthy}, migrate: {condition: completed}}
  db:
    image: postgres:16.4
    health: {cmd: [pg_isready]}
  migrate:
    image: ghcr.io/x/migrate:1.0
    restart: "no"
"""


def _fleet() -> tuple[Fleet, Plan]:
    fleet = loads(FLEET)
    return fleet, plan(fleet)


def test_kubernetes_keeps_address_entries_as_host_aliases_and_says_the_rest() -> None:
    result = render_kubernetes(*_fleet())
    pod = next(d for d in SAFE.load_all(result.files["services/api.yaml"])
               if d and d["kind"] == "Deployment")["spec"]["template"]["spec"]
    assert pod["hostAliases"] == [{"ip": "10.0.0.9", "hostnames": ["license", "mirror"]}]
    lost = "\n".join(result.lost)
    assert "fleet.yaml:7:56: service api: extra_hosts gateway=host-gateway" in lost
    assert "extra_hosts license" not in lost
    assert "fleet.yaml:8:5: service api: hostname is not rendered for Kubernetes yet" in lost
    assert "cap_drop is not rendered" in lost
    assert "depends_on db (healthy), migrate (completed) is not enforced" in lost


def test_swarm_keeps_extra_hosts_and_says_the_settings_it_leaves_out() -> None:
    result = render_swarm(*_fleet())
    api = SAFE.load(result.files["stack.yaml"])["services"]["api"]
    assert api["extra_hosts"] == ["license:10.0.0.9", "mirror:10.0.0.9"]
    lost = "\n".join(result.lost)
    assert "fleet.yaml:7:56: service api: extra_hosts gateway=host-gateway" in lost
    assert "extra_hosts license" not in lost
    assert "fleet.yaml:8:5: service api: hostname is not rendered for Swarm yet" in lost
    assert "fleet.yaml:9:5: service api: cap_drop is not rendered for Swarm yet" in lost
    assert "depends_on db (healthy), migrate (completed) is not kept" in lost
