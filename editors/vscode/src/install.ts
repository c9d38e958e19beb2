// `Sidehand: Install Server`: a virtual environment of the extension's own (so nothing in a
// workspace can shadow the server's packages) with the sidehand package in it, made with uv when
// it is on PATH, else with Python's venv and pip.

import { spawn } from "node:child_process";
import * as path from "node:path";
import * as vscode from "vscode";
import { installSteps } from "./launch";
import { isFile } from "./server";

function onPath(name: string): string | undefined {
  const names = process.platform === "win32" ? [`${name}.exe`] : [name];
  for (const dir of (process.env.PATH ?? "").split(path.delimiter).filter(Boolean))
    for (const candidate of names) if (isFile(path.join(dir, candidate))) return path.join(dir, candidate);
  return undefined;
}

function run(command: string, args: string[], log: vscode.LogOutputChannel): Promise<number> {
  log.info(`$ ${command} ${args.join(" ")}`);
  return new Promise((resolve) => {
    const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"] });
    child.stdout.on("data", (data: Buffer) => log.append(data.toString()));
    child.stderr.on("data", (data: Buffer) => log.append(data.toString()));
    child.on("error", (error) => {
      log.error(error.message);
      resolve(-1);
    });
    child.on("exit", (code) => resolve(code ?? -1));
  });
}

async function python311(candidates: string[], log: vscode.LogOutputChannel): Promise<string | undefined> {
  for (const python of candidates)
    if ((await run(python, ["-c", "import sys; sys.exit(sys.version_info < (3, 11))"], log)) === 0) return python;
  return undefined;
}

export async function installServer(envDir: string, log: vscode.LogOutputChannel): Promise<boolean> {
  const config = vscode.workspace.getConfiguration("sidehand");
  const source = config.get<string>("server.installSource", "sidehand");
  const configured = config.get<string>("server.python", "");
  const pythons = configured ? [configured] : ["python3", "python"].map(onPath).filter((p): p is string => p !== undefined);
  const uv = onPath("uv");
  const python = await python311(pythons, log);
  const steps = installSteps({ uv, python, envDir, source, platform: process.platform });
  if (!steps) {
    const open = "Set the Python interpreter";
    const choice = await vscode.window.showErrorMessage("Sidehand: installing the server needs Python 3.11 or later, or uv. None was found.", open);
    if (choice === open) void vscode.commands.executeCommand("workbench.action.openSettings", "sidehand.server.python");
    return false;
  }
  log.show(true);
  return vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: `Sidehand: installing ${source}` }, async (progress) => {
    for (const [command, ...args] of steps) {
      progress.report({ message: path.basename(command) === "uv" ? "uv" : args.slice(0, 2).join(" ") });
      if ((await run(command, args, log)) !== 0) {
        void vscode.window.showErrorMessage(`Sidehand: the install failed at \`${path.basename(command)} ${args.join(" ")}\`: see the Sidehand output.`);
        return false;
      }
    }
    void vscode.window.showInformationMessage(`Sidehand: installed into ${envDir}.`);
    return true;
  });
}
