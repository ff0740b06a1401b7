"""DY801 (placement impossible, reported by `check` as a finding) and DY210 (a hand-written vLLM
memory flag above the budget)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from dockyard.checks import Severity
from dockyard.cli import main
from tests.unit.checks.helpers import HEALTH, findings

TWO_GPUS = """\
fleet: demo
machines:
  a: {gpus: [{model: NVIDIA GeForce RTX 4090, memory: 24GiB}]}
  b: {gpus: [{model: NVIDIA GeForce RTX 3060, memory: 12GiB}]}
services:
"""


def _gpu_service(name: str, memory: str) -> str:
    return f"  {name}:\n    image: ghcr.io/x/{name}:1.0\n    gpu: {{memory: {memory}}}\n" + HEALTH


def _check(path: Path, monkeypatch: pytest.MonkeyPatch,
           capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", ["dockyard", "-f", str(path), "check"])
    with pytest.raises(SystemExit) as exit_info:
        main()
    return int(exit_info.value.code or 0), capsys.readouterr().out


def test_dy801_names_the_services_that_cannot_be_placed_and_exits_1(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "fleet.yaml"
    # 20 + 20 GiB fit no GPU together, and only one GPU has room for either.
    path.write_text(TWO_GPUS + _gpu_service("llm", "20GiB") + _gpu_service("coder", "20GiB")
                    + _gpu_service("tts", "4GiB"))
    code, out = _check(path, monkeypatch, capsys)
    assert code == 1, out
    first = out.splitlines()[0]
    assert first.startswith("fleet.yaml:") and " error DY801: " in first
    assert "llm" in first and "coder" in first
    assert "tts" not in first.split("cannot be placed")[0]  # not part of the smallest set


def test_dy801_absent_when_the_services_fit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "fleet.yaml"
    path.write_text(TWO_GPUS + _gpu_service("llm", "20GiB") + _gpu_service("coder", "10GiB"))
    code, out = _check(path, monkeypatch, capsys)
    assert "DY801" not in out
    assert code == 0, out


def _vllm(flag: str) -> str:
    return TWO_GPUS + f"""\
  llm:
    image: vllm/vllm-openai:v0.11.0
    machine: a
    command: [--model, Qwen/Qwen3-8B{flag}]
    gpu: {{memory: 12GiB, runtime: vllm}}
""" + HEALTH


def test_dy210_a_hand_written_vllm_share_above_the_budget() -> None:
    found = findings(_vllm(", --gpu-memory-utilization, '0.9'"), "DY210")
    assert len(found) == 1
    assert found[0].severity is Severity.WARNING
    assert "0.9" in found[0].message and "0.50" in found[0].message


def test_dy210_absent_when_the_flag_is_within_the_budget_or_not_written() -> None:
    assert findings(_vllm(", --gpu-memory-utilization, '0.45'"), "DY210") == []
    assert findings(_vllm(""), "DY210") == []
