"""Sandbox base images: check, pull, or build one from Debian packages with no registry."""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from core.config import DEFAULT_IMAGE

log = logging.getLogger(__name__)

# What an agent needs beyond a POSIX shell: bash for the persistent shell; python3 with pip, venv
# and pytest, git, ripgrep and curl for everyday tasks (a model reaches for them first: without
# pytest one looped on `pip install pytest` with the network off); procps to see processes.
# coreutils (base64, md5sum) come with minbase. core.config.DEFAULT_IMAGE_TOOLS says this to the
# model; tests/sandbox/test_image.py checks the image has each.
BASE_PACKAGES = (
    "bash",
    "python3",
    "python3-pip",
    "python3-venv",
    "python3-pytest",
    "git",
    "ripgrep",
    "curl",
    "procps",
    "ca-certificates",
    "patch",
)
DEBIAN_SOURCES = Path("/etc/apt/sources.list.d/debian.sources")
FALLBACK_MIRROR = "http://deb.debian.org/debian"


class ImageBuildError(RuntimeError):
    """The base image could not be built; the message says which step failed and what to do."""


def debian_mirror(sources: Path = DEBIAN_SOURCES) -> str:
    """The first `URIs:` value of the machine's Debian sources (what apt itself reaches)."""
    try:
        text = sources.read_text()
    except OSError:
        return FALLBACK_MIRROR
    match = re.search(r"^URIs:\s*(\S+)", text, re.MULTILINE)
    return match.group(1) if match else FALLBACK_MIRROR


def build_base_image(
    client: Any,
    tag: str = DEFAULT_IMAGE,
    suite: str = "bookworm",
    packages: tuple[str, ...] = BASE_PACKAGES,
    mirror: str | None = None,
) -> str:
    """Build `tag` with debootstrap and import it into the engine. Returns the image id."""
    if shutil.which("debootstrap") is None:
        raise ImageBuildError(
            "debootstrap is not installed: run `apt-get install debootstrap` "
            "(or pull any image with a POSIX shell and set SIDEHAND_SANDBOX_IMAGE)"
        )
    mirror = mirror or debian_mirror()
    with tempfile.TemporaryDirectory(prefix="sidehand-rootfs-") as root:
        cmd = ["debootstrap", "--variant=minbase", f"--include={','.join(packages)}", suite, root, mirror]
        log.info("building %s: %s", tag, " ".join(cmd))
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            tail = "\n".join(done.stdout.splitlines()[-15:] + done.stderr.splitlines()[-15:])
            raise ImageBuildError(f"debootstrap failed (exit {done.returncode}):\n{tail}")
        tar = subprocess.Popen(["tar", "-C", root, "-c", "."], stdout=subprocess.PIPE)
        assert tar.stdout is not None
        repository, _, version = tag.rpartition(":") if ":" in tag.split("/")[-1] else (tag, "", "latest")
        try:
            client.api.import_image_from_stream(
                tar.stdout, repository=repository, tag=version, changes=['CMD ["/bin/bash"]']
            )
        finally:
            tar.stdout.close()
            tar.wait()
    image = client.images.get(tag)
    log.info("built %s (%s)", tag, image.id)
    return str(image.id)
