"""`dockyard machine ...`: the machines a fleet runs on."""

from __future__ import annotations

import typer

from dockyard.cli import views


def detect(name: str | None = typer.Option(None, "--name", help="Machine name.")) -> None:
    """Print this machine as a manifest entry: arch, CPUs, memory, GPUs, driver, CUDA."""
    import socket

    from dockyard.engine.machine import detect as detect_machine
    from dockyard.engine.machine import machine_name, render_machine_yaml

    views.out.print(render_machine_yaml(name or machine_name(socket.gethostname()),
                                        detect_machine()),
                    end="", highlight=False, markup=False)
