"""The local Docker engine reached the way a remote one is over `ssh://`: an sshd of our own on a
loopback port (its own host key, one authorized key, no other config), and a HOME whose
~/.ssh/config and known_hosts name that key and trust that host (the SDK's paramiko reads them)."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def ssh_engine(root: Path) -> Iterator[dict[str, str]]:
    """Yield the environment (DOCKER_HOST=ssh://..., PATH with the ssh wrapper) that reaches the
    local engine through a throwaway sshd."""
    sshd = shutil.which("sshd") or "/usr/sbin/sshd"
    root.mkdir(parents=True, exist_ok=True)
    for name in ("host_key", "client_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(root / name)], check=True)
    (root / "authorized_keys").write_text((root / "client_key.pub").read_text())
    port = _free_port()
    (root / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {root / 'host_key'}\n"
        f"AuthorizedKeysFile {root / 'authorized_keys'}\nPermitRootLogin prohibit-password\n"
        "PasswordAuthentication no\nStrictModes no\nUsePAM no\nMaxSessions 64\n"
        f"PidFile {root / 'sshd.pid'}\nSetEnv PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin\n"
    )
    home = root / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "config").write_text(f"Host 127.0.0.1\n  IdentityFile {root / 'client_key'}\n")
    host_key = (root / "host_key.pub").read_text().split()
    (home / ".ssh" / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_key[0]} {host_key[1]}\n")
    Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege separation folder
    daemon = subprocess.Popen([sshd, "-D", "-e", "-f", str(root / "sshd_config")], stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            if daemon.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"sshd did not start: {daemon.stderr.read().decode() if daemon.stderr else ''}"
                )
            time.sleep(0.1)
        yield {"DOCKER_HOST": f"ssh://root@127.0.0.1:{port}", "HOME": str(home)}
    finally:
        daemon.terminate()
        daemon.wait(10)
        if daemon.stderr is not None:
            daemon.stderr.close()
