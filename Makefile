# One task runner for people and CI: `make test` is what the README and .ci/run call.
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed

.PHONY: venv engine engine-qemu lint test unit process engine-test example clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

# Installs Debian's docker.io + the compose plugin and starts dockerd when none answers.
engine:
	scripts/install-engine.sh

# The tests also build images for the other architecture: QEMU user emulation as well.
engine-qemu:
	scripts/install-engine.sh --qemu

lint: venv
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy src

# Three tiers. unit: pure and fast (no programs, no sockets; tests/unit/conftest.py refuses
# them), under 30 s on 2 cores. process: runs programs (uv, pip, hadolint, the CLI, a
# supervisor) but needs no engine. engine-test: a real Docker engine.
unit: venv
	$(BIN)/pytest -q tests/unit

process: venv
	$(BIN)/pytest -q tests/process

engine-test: venv engine-qemu
	$(BIN)/pytest -q tests/engine

# The whole suite: lint, then all three tiers (unit, process, engine) in one pytest run. The
# bytecode is compiled first: where PYTHONDONTWRITEBYTECODE is set, every `python -m dockyard`
# a test starts would compile dockyard again (0.3-0.7 s each).
test: venv engine-qemu lint
	$(BIN)/python -m compileall -q -j0 src
	$(BIN)/pytest -q --durations=30

# The bundled example fleet, up and healthy, then a real search through it.
example: venv engine
	scripts/quickstart.sh

clean:
	rm -rf $(VENV) .dockyard out
