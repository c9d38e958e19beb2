// Which `sidehand` to run, what the server needs from the settings, and what to tell the user when
// it cannot start. Pure (file checks are passed in), so every branch is unit-tested.

import * as path from "node:path";
import type { SandboxStatus } from "./shared/protocol";
import type { Problem, ProblemKind } from "./shared/view";

export interface ServerSettings {
  command: string; // sidehand.server.command
  python: string; // sidehand.server.python
  model: string;
  apiBase: string;
  approvalMode: string;
  sandboxImage: string;
  network: boolean;
}

export interface Launch { command: string; args: string[]; source: string }

export interface Places {
  platform: NodeJS.Platform;
  workspaceFolders: string[];
  trusted: boolean; // workspace trust: an untrusted workspace's own virtual environment is never run
  managedEnv: string; // the environment `Sidehand: Install Server` creates
  pathDirs: string[];
  isFile: (file: string) => boolean;
}

// Settings whose change means the server must restart to see it.
export const RESTART_KEYS = ["model", "apiBase", "approvalMode", "sandboxImage", "network", "server.command", "server.python"];

function binDir(env: string, platform: NodeJS.Platform): string {
  return path.join(env, platform === "win32" ? "Scripts" : "bin");
}

function exe(name: string, platform: NodeJS.Platform): string {
  return platform === "win32" ? `${name}.exe` : name;
}

/** The `sidehand lsp` to run. Always the console script of an installed package (never
 *  `python -m` from the workspace: a project's own top-level `core/` would shadow Sidehand's). */
export function resolveLaunch(settings: ServerSettings, places: Places): Launch | Problem {
  const script = exe("sidehand", places.platform);
  if (settings.command) {
    return places.isFile(settings.command)
      ? { command: settings.command, args: ["lsp"], source: "the sidehand.server.command setting" }
      : problem("notFound", `The sidehand.server.command setting names ${settings.command}, which does not exist.`);
  }
  if (settings.python) {
    const beside = path.join(path.dirname(settings.python), script);
    if (places.isFile(beside)) return { command: beside, args: ["lsp"], source: "the sidehand.server.python setting" };
    if (!places.isFile(settings.python))
      return problem("noPython", `The sidehand.server.python setting names ${settings.python}, which does not exist.`);
    // An interpreter without the console script beside it (a system Python with a user install):
    // -P keeps the working directory off sys.path, and the server runs outside the workspace.
    return { command: settings.python, args: ["-P", "-m", "sidehand", "lsp"], source: "the sidehand.server.python setting" };
  }
  const candidates: [string, string][] = [];
  if (places.trusted)
    for (const folder of places.workspaceFolders)
      for (const venv of [".venv", "venv"]) candidates.push([path.join(binDir(path.join(folder, venv), places.platform), script), `the workspace's ${venv}`]);
  candidates.push([path.join(binDir(places.managedEnv, places.platform), script), "the managed environment"]);
  for (const dir of places.pathDirs) candidates.push([path.join(dir, script), "PATH"]);
  for (const [candidate, source] of candidates) if (places.isFile(candidate)) return { command: candidate, args: ["lsp"], source };
  return problem("notFound", "Sidehand's server (the `sidehand` command) is not installed: not on PATH, not in the workspace's virtual environment.");
}

/** The `initializationOptions`: the settings in camelCase, and the protocol this client speaks.
 *  Empty settings are left out, so the server's config file and SIDEHAND_* variables apply. */
export function initializationOptions(settings: ServerSettings, apiKey: string | undefined): Record<string, unknown> {
  const options: Record<string, unknown> = { sidehand: { protocolVersion: 1 }, approvalMode: settings.approvalMode, network: settings.network };
  if (settings.model) options.model = settings.model;
  if (settings.apiBase) options.apiBase = settings.apiBase;
  if (settings.sandboxImage) options.sandboxImage = settings.sandboxImage;
  if (apiKey) options.apiKey = apiKey;
  return options;
}

/** What the user sees, and the buttons that fix it or open the right setting. */
export function problem(kind: ProblemKind, detail: string): Problem {
  const install = { label: "Install Sidehand", command: "sidehand.installServer" };
  const setting = (label: string, key: string) => ({ label, command: "workbench.action.openSettings", args: [key] });
  const log = { label: "Show server log", command: "sidehand.showServerLog" };
  switch (kind) {
    case "notFound":
      return { kind, title: "Sidehand's server is not installed", detail, actions: [install, setting("Set the server command", "sidehand.server.command")] };
    case "noPython":
      return { kind, title: "No Python 3.11 or later found", detail, actions: [setting("Set the Python interpreter", "sidehand.server.python")] };
    case "packageMissing":
      return { kind, title: "The sidehand package is missing", detail, actions: [install, setting("Set the Python interpreter", "sidehand.server.python")] };
    case "crashed":
      return { kind, title: "The Sidehand server stopped", detail, actions: [{ label: "Restart server", command: "sidehand.restartServer" }, log] };
    case "noModel":
      return { kind, title: "Sidehand's settings are incomplete", detail, actions: [setting("Set the model", "sidehand.model"), { label: "Set API key", command: "sidehand.setApiKey" }] };
    case "noEngine":
      return { kind, title: "Sidehand cannot reach the Docker engine", detail, actions: [{ label: "Retry", command: "sidehand.checkSandbox" }, log] };
  }
}

/** The panel's problem for the server's sandbox status: null when the engine answers. */
export function sandboxProblem(status: SandboxStatus): Problem | null {
  if (status.state === "ready") return null;
  const why = status.message ?? "The server could not reach the Docker engine.";
  return problem("noEngine", `${why}\n\nSessions need it: every command the agent runs happens in a Docker container. Press Retry once it runs.`);
}

/** Why a server process ended before or while it served, from its exit code and its last stderr. */
export function diagnoseExit(code: number | null, signal: string | null, stderrTail: string): Problem {
  if (/No module named '?sidehand|ModuleNotFoundError: No module named '(sidehand|core|agent_lsp|pygls)/.test(stderrTail))
    return problem("packageMissing", `The interpreter runs, but a package Sidehand needs is missing:\n${lastLines(stderrTail, 3)}`);
  const how = signal ? `was killed (${signal})` : `exited with code ${code ?? "?"}`;
  const tail = lastLines(stderrTail, 8);
  return problem("crashed", tail ? `The server ${how}. Its last words:\n${tail}` : `The server ${how}.`);
}

function lastLines(text: string, count: number): string {
  return text.trimEnd().split("\n").slice(-count).join("\n");
}

/** The commands that make the managed environment and install `source` into it, or undefined
 *  when neither uv nor a Python 3.11+ is at hand. */
export function installSteps(tools: { uv?: string; python?: string; envDir: string; source: string; platform: NodeJS.Platform }): [string, ...string[]][] | undefined {
  const envPython = path.join(binDir(tools.envDir, tools.platform), exe("python", tools.platform));
  if (tools.uv)
    return [
      [tools.uv, "venv", "--allow-existing", "--python", tools.python ?? ">=3.11", tools.envDir],
      [tools.uv, "pip", "install", "--python", envPython, "--upgrade", tools.source],
    ];
  if (tools.python)
    return [
      [tools.python, "-m", "venv", tools.envDir],
      [envPython, "-m", "pip", "install", "--upgrade", tools.source],
    ];
  return undefined;
}

export function isProblem(value: Launch | Problem): value is Problem {
  return "actions" in value;
}
