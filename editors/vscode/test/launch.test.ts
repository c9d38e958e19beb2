// Which server runs, with which options, and what the panel says when it cannot.
import assert from "node:assert/strict";
import * as path from "node:path";
import { test } from "node:test";
import { diagnoseExit, initializationOptions, installSteps, isProblem, resolveLaunch, sandboxProblem, type Places, type ServerSettings } from "../src/launch";

const settings = (over: Partial<ServerSettings> = {}): ServerSettings =>
  ({ command: "", python: "", model: "", apiBase: "", approvalMode: "risky", sandboxImage: "", network: false, ...over });
const places = (files: string[], over: Partial<Places> = {}): Places =>
  ({ platform: "linux", workspaceFolders: ["/ws"], trusted: true, managedEnv: "/store/env", pathDirs: ["/usr/bin"], isFile: (f) => files.includes(f), ...over });

test("the command setting wins, and must exist", () => {
  assert.deepEqual(resolveLaunch(settings({ command: "/opt/sidehand" }), places(["/opt/sidehand", "/usr/bin/sidehand"])), {
    command: "/opt/sidehand", args: ["lsp"], source: "the sidehand.server.command setting" });
  const missing = resolveLaunch(settings({ command: "/nope" }), places(["/usr/bin/sidehand"]));
  assert.ok(isProblem(missing));
  assert.match(missing.detail, /\/nope/);
});

test("a Python setting runs the console script beside it, else the interpreter kept off the workspace", () => {
  const beside = resolveLaunch(settings({ python: "/env/bin/python" }), places(["/env/bin/python", "/env/bin/sidehand"]));
  assert.ok(!isProblem(beside) && beside.command === "/env/bin/sidehand");
  const bare = resolveLaunch(settings({ python: "/usr/bin/python3" }), places(["/usr/bin/python3"]));
  assert.ok(!isProblem(bare));
  assert.deepEqual(bare.args, ["-P", "-m", "sidehand", "lsp"]);
  const none = resolveLaunch(settings({ python: "/missing/python" }), places([]));
  assert.ok(isProblem(none) && none.title.includes("Python"));
});

test("by default: the workspace's virtual environment, the managed one, then PATH", () => {
  const all = ["/ws/.venv/bin/sidehand", "/store/env/bin/sidehand", "/usr/bin/sidehand"];
  const pick = (files: string[], over: Partial<Places> = {}) => {
    const launch = resolveLaunch(settings(), places(files, over));
    return isProblem(launch) ? launch.title : launch.command;
  };
  assert.equal(pick(all), "/ws/.venv/bin/sidehand");
  assert.equal(pick(all.slice(1)), "/store/env/bin/sidehand");
  assert.equal(pick(all.slice(2)), "/usr/bin/sidehand");
  assert.equal(pick(all, { trusted: false }), "/store/env/bin/sidehand"); // an untrusted workspace's venv is never run
  assert.equal(pick([]), "Sidehand's server is not installed");
  assert.equal(pick(["C:\\ws\\.venv\\Scripts\\sidehand.exe"].map((f) => f.replace(/\\/g, path.sep)), { platform: "win32", workspaceFolders: ["C:\\ws".replace(/\\/g, path.sep)] }).endsWith("sidehand.exe"), true);
});

test("not-found offers the install and the setting", () => {
  const launch = resolveLaunch(settings(), places([]));
  assert.ok(isProblem(launch));
  assert.deepEqual(launch.actions.map((a) => a.command), ["sidehand.installServer", "workbench.action.openSettings"]);
});

test("initializationOptions: camelCase settings, the protocol declared, empty ones left to the server", () => {
  assert.deepEqual(initializationOptions(settings({ model: "openai/x", apiBase: "http://127.0.0.1:1/v1", network: true }), "sk-1"), {
    sidehand: { protocolVersion: 1 }, approvalMode: "risky", network: true, model: "openai/x", apiBase: "http://127.0.0.1:1/v1", apiKey: "sk-1" });
  assert.deepEqual(initializationOptions(settings({ sandboxImage: "img:1" }), undefined), {
    sidehand: { protocolVersion: 1 }, approvalMode: "risky", network: false, sandboxImage: "img:1" });
});

test("an exit is explained: a missing package, else the last lines of stderr", () => {
  const missing = diagnoseExit(1, null, "Traceback…\nModuleNotFoundError: No module named 'sidehand'\n");
  assert.equal(missing.title, "The sidehand package is missing");
  assert.equal(missing.actions[0]?.command, "sidehand.installServer");
  const crash = diagnoseExit(137, null, "a\nb\nMemoryError\n");
  assert.equal(crash.title, "The Sidehand server stopped");
  assert.match(crash.detail, /code 137[\s\S]*MemoryError/);
  assert.deepEqual(crash.actions.map((a) => a.command), ["sidehand.restartServer", "sidehand.showServerLog"]);
  assert.match(diagnoseExit(null, "SIGKILL", "").detail, /killed \(SIGKILL\)/);
});

test("install steps: uv when present, else venv and pip, else nothing to do it with", () => {
  const uv = installSteps({ uv: "/bin/uv", python: "/usr/bin/python3", envDir: "/e", source: "sidehand", platform: "linux" });
  assert.deepEqual(uv, [["/bin/uv", "venv", "--allow-existing", "--python", "/usr/bin/python3", "/e"], ["/bin/uv", "pip", "install", "--python", "/e/bin/python", "--upgrade", "sidehand"]]);
  const pip = installSteps({ python: "/usr/bin/python3", envDir: "/e", source: "/src/sidehand", platform: "linux" });
  assert.deepEqual(pip, [["/usr/bin/python3", "-m", "venv", "/e"], ["/e/bin/python", "-m", "pip", "install", "--upgrade", "/src/sidehand"]]);
  assert.equal(installSteps({ envDir: "/e", source: "sidehand", platform: "linux" }), undefined);
});

test("an unreachable engine: the server's reason, a Retry and the log; a ready one is no problem", () => {
  assert.equal(sandboxProblem({ state: "ready", message: null }), null);
  const shown = sandboxProblem({ state: "unavailable", message: "no Docker engine is reachable ([Errno 13] cannot connect to /var/run/docker.sock: Permission denied)" });
  assert.ok(shown);
  assert.equal(shown.title, "Sidehand cannot reach the Docker engine");
  assert.match(shown.detail, /^no Docker engine is reachable \(\[Errno 13\] .*Permission denied\)/);
  assert.deepEqual(shown.actions.map((a) => a.command), ["sidehand.checkSandbox", "sidehand.showServerLog"]);
  assert.equal(shown.actions[0]?.label, "Retry");
});
