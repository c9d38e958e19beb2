"""The default image has the tools the system prompt says it has (issue 18: a small model looped on
`pip install pytest` in an image with python3 alone), all usable with the network off."""

from __future__ import annotations

import pytest

from core.config import DEFAULT_IMAGE_TOOLS
from sandbox.docker_sandbox import DockerSandbox
from sandbox.image import BASE_PACKAGES

pytestmark = pytest.mark.docker


async def test_the_default_image_has_what_the_prompt_says(sandbox: DockerSandbox) -> None:
    commands = ("bash", "python3", "pip", "pytest", "git", "rg", "curl", "patch", "ps")
    found = await sandbox.run(
        f"for c in {' '.join(commands)}; do command -v $c >/dev/null || echo missing $c; done"
    )
    assert found.output == ""
    # each works offline: a venv with pip, a test run, a search
    work = await sandbox.run(
        "cd /tmp && python3 -m venv venv && venv/bin/pip --version >/dev/null && echo venv-ok; "
        "printf 'def test_one():\\n    assert 1 + 1 == 2\\n' > test_x.py && "
        "python3 -m pytest -q test_x.py 2>&1 | tail -n 1; rg -c one test_x.py",
        timeout=120,
    )
    assert work.output.splitlines()[0] == "venv-ok"
    assert "1 passed" in work.output and work.output.endswith("1\n")
    for tool in ("python3", "pip", "venv", "pytest", "git", "ripgrep", "curl", "patch"):
        assert tool in DEFAULT_IMAGE_TOOLS
    assert {"python3-pip", "python3-venv", "python3-pytest", "ripgrep", "curl"} <= set(BASE_PACKAGES)
