#!/usr/bin/env bash
# Idempotent set-up for a fresh machine: Python env, a Docker engine, the default sandbox image.
# Every step reuses what already exists, so a second run takes seconds.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
log() { printf '[setup] %s\n' "$*" >&2; }

SIDEHAND_IMAGE="${SIDEHAND_SANDBOX_IMAGE:-sidehand/base:bookworm-2}"
VENV="${SIDEHAND_VENV:-$here/.venv}"

# 1. Python environment, from the lock file (uv is a wheel on PyPI with its binary inside).
if [ ! -x "$VENV/bin/python" ]; then
  log "creating $VENV"
  python3 -m venv "$VENV"
fi
if [ ! -x "$VENV/bin/uv" ]; then
  "$VENV/bin/python" -m pip install --quiet "uv>=0.9,<1"
fi
# Bytecode is compiled at install (as pip does; uv does not by default): with PYTHONDONTWRITEBYTECODE
# set, as on these machines, every process would otherwise compile litellm from source (seconds of
# CPU, holding the GIL: the servers' event loops stall meanwhile).
stamp="$VENV/.sidehand-lock"
wanted="$(cat requirements.lock; echo '# installed with --compile-bytecode')"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$wanted" ]; then
  log "installing dependencies from requirements.lock"
  VIRTUAL_ENV="$VENV" "$VENV/bin/uv" pip sync --quiet --compile-bytecode requirements.lock
  VIRTUAL_ENV="$VENV" "$VENV/bin/uv" pip install --quiet --no-deps -e .
  printf '%s\n' "$wanted" > "$stamp"
fi
"$VENV/bin/python" -m compileall -q core sandbox agent_lsp agent_mcp sidehand >/dev/null

# 2. A Docker engine: use the one that answers, else install docker.io and start dockerd.
if ! docker info >/dev/null 2>&1; then
  if ! command -v dockerd >/dev/null 2>&1; then
    log "installing docker.io"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq docker.io >/dev/null
  fi
  log "starting dockerd"
  mkdir -p /var/log
  nohup dockerd >/var/log/sidehand-dockerd.log 2>&1 &
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
  docker info >/dev/null 2>&1 || { log "dockerd did not start; see /var/log/sidehand-dockerd.log"; exit 1; }
fi

# 3. The default sandbox image: reuse, else build with debootstrap (no registry).
if ! docker image inspect "$SIDEHAND_IMAGE" >/dev/null 2>&1; then
  if ! command -v debootstrap >/dev/null 2>&1; then
    log "installing debootstrap"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq debootstrap >/dev/null 2>&1 \
      || { apt-get update -qq && apt-get install -y -qq debootstrap >/dev/null; }
  fi
  log "building $SIDEHAND_IMAGE with debootstrap (about a minute)"
  "$VENV/bin/sidehand" sandbox build-base --image "$SIDEHAND_IMAGE"
fi
# 4. sshd, for the test of a DOCKER_HOST=ssh:// engine (tests/sandbox/test_remote_engine.py).
if ! command -v sshd >/dev/null 2>&1 && [ ! -x /usr/sbin/sshd ]; then
  log "installing openssh-server (the ssh:// engine test)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq openssh-server >/dev/null 2>&1 \
    || { apt-get update -qq && apt-get install -y -qq openssh-server >/dev/null; }
fi
log "ready: $("$VENV/bin/python" --version), image $SIDEHAND_IMAGE"
