"""Kubernetes output that must be run to be judged: a probe script under a real /bin/sh."""

from __future__ import annotations

import subprocess

import pytest

from tests.unit.test_render_kube import container, render_text

pytestmark = pytest.mark.process


def test_a_probe_script_reads_the_secret_wherever_it_is_quoted() -> None:
    manifest = """\
fleet: quotes
machines: {box: {}}
services:
  app:
    image: app:1
    health:
      cmd: "echo ${TOKEN:?} '${TOKEN}' \\"${TOKEN}\\" 'a'\\"${TOKEN}\\""
"""
    value = "s3cret w0rd"
    result = render_text(manifest, {"TOKEN": value})
    script = container(result, "app")["readinessProbe"]["exec"]["command"]
    assert value not in "".join(result.files.values())
    ran = subprocess.run(script, env={"DOCKYARD_SECRET_TOKEN": value}, capture_output=True,
                         text=True, check=True)
    assert ran.stdout == f"{value} {value} {value} a{value}\n"
