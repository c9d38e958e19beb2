"""A real plain-LSP editor: headless Neovim 0.7 runs a Sidehand code action on a selection and the
edits land in its buffers through workspace/applyEdit, a new file included (apt package: neovim).
Neovim 0.7 resolves only `edit` lazily and declares resourceOperations without documentChanges."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.agent_lsp.conftest import fake_server


@pytest.fixture(autouse=True)
def _needs_neovim() -> None:
    if shutil.which("nvim") is None:  # scripts/test installs it: a missing nvim is a set-up failure
        pytest.fail("needs Neovim: apt-get install -y neovim (scripts/test does this)")


LUA = r"""
local out = io.open(OUT, "w")
local buf = vim.fn.bufadd(FILE)
vim.fn.bufload(buf)
vim.api.nvim_set_current_buf(buf)
local id = vim.lsp.start_client({cmd = CMD, cmd_env = ENV, root_dir = ROOT, name = "sidehand",
  workspace_folders = {{uri = vim.uri_from_fname(ROOT), name = "ws"}}})
vim.lsp.buf_attach_client(buf, id)
local client = vim.lsp.get_client_by_id(id)
vim.wait(10000, function() return client.initialized end, 20)
local params = {textDocument = {uri = vim.uri_from_bufnr(buf)},
  range = {start = {line = 0, character = 0}, ["end"] = {line = 1, character = 16}},
  context = {diagnostics = {}}}
local actions = client.request_sync("textDocument/codeAction", params, 5000, buf).result
local listed = actions[1].command ~= nil  -- Neovim 0.7 resolves `edit` only: the command is listed
local fix = client.request_sync("codeAction/resolve", actions[1], 5000, buf).result
client.request_sync("workspace/executeCommand", fix.command, 5000, buf)
vim.wait(10000, function()
  return vim.api.nvim_buf_get_lines(buf, 1, 2, false)[1] == "    return a + b" end, 20)
local helper = vim.fn.bufnr(HELPER)
vim.wait(10000, function()
  helper = vim.fn.bufnr(HELPER)
  return helper > 0 and vim.api.nvim_buf_get_lines(helper, 0, 1, false)[1] == "def helper():" end, 20)
out:write(vim.fn.json_encode({titles = vim.tbl_map(function(a) return a.title end, actions),
  listed = listed, lines = vim.api.nvim_buf_get_lines(buf, 0, -1, false),
  helper = helper > 0 and vim.api.nvim_buf_get_lines(helper, 0, -1, false) or vim.NIL}))
out:close()
vim.lsp.stop_client(id)
vim.cmd("qa!")
"""


def test_neovim_code_action_edits_the_buffer(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    source = ws / "calc.py"
    source.write_text("def add(a, b):\n    return a - b\n")
    script = tmp_path / "script.json"
    fix = {"command": "str_replace", "path": "/workspace/calc.py", "old_str": "a - b", "new_str": "a + b"}
    new = {"command": "create", "path": "/workspace/helper.py", "file_text": "def helper():\n    return 1\n"}
    script.write_text(
        json.dumps(
            [
                {"tool_calls": [{"name": "editor", "arguments": fix}]},
                {"tool_calls": [{"name": "editor", "arguments": new}]},
                {"text": "Fixed."},
            ]
        )
    )
    env = {
        "SIDEHAND_SESSIONS_DIR": str(tmp_path / "sessions"),
        "SIDEHAND_CONFIG": str(tmp_path / "none.toml"),
        "SIDEHAND_APPROVAL_MODE": "never",
    }
    out = tmp_path / "out.json"
    lua = tmp_path / "test.lua"
    lua.write_text(
        f"OUT = {json.dumps(str(out))}\nFILE = {json.dumps(str(source))}\nROOT = {json.dumps(str(ws))}\n"
        f"HELPER = {json.dumps(str(ws / 'helper.py'))}\n"
        f"CMD = {{{', '.join(json.dumps(word) for word in fake_server(script))}}}\n"
        f"ENV = {{{', '.join(f'{k} = {json.dumps(v)}' for k, v in env.items())}}}\n" + LUA
    )
    home = {
        k: str(tmp_path / k.lower())
        for k in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME")
    }
    subprocess.run(
        ["nvim", "--headless", "-n", "-u", "NONE", "-i", "NONE", "-c", f"luafile {lua}"],
        env={**os.environ, **home, "PYTHONPATH": str(Path(__file__).parents[2])},
        cwd=ws,
        timeout=40,
        check=True,
        capture_output=True,
    )
    result = json.loads(out.read_text())
    assert result["titles"][0] == "Sidehand: Fix" and result["listed"]
    assert result["lines"] == ["def add(a, b):", "    return a + b"]
    # The new file was offered as an edit (a buffer holding its text), not written behind the editor.
    assert result["helper"][:2] == ["def helper():", "    return 1"]
    on_disk = ws / "helper.py"
    assert not on_disk.exists() or on_disk.read_text() == ""  # the text is in the buffer, unsaved
