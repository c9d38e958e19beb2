// The `sidehand lsp` process and its language client: start, restart on relevant changes, and
// tell the panel (through `onStatus`) when it cannot start or stops.

import { spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import * as readline from "node:readline";
import * as vscode from "vscode";
import { CancellationToken, CloseAction, ErrorAction, LanguageClient, ResponseError, type WorkspaceEdit } from "vscode-languageclient/node";
import { diagnoseExit, initializationOptions, isProblem, resolveLaunch, type ServerSettings } from "./launch";
import type { Problem, ServerStatus } from "./shared/view";

export const API_KEY_SECRET = "sidehand.apiKey";
const STDERR_TAIL = 8_000; // characters of the server's stderr kept to explain an exit

export function readSettings(): ServerSettings {
  const config = vscode.workspace.getConfiguration("sidehand");
  return {
    command: config.get<string>("server.command", ""),
    python: config.get<string>("server.python", ""),
    model: config.get<string>("model", ""),
    apiBase: config.get<string>("apiBase", ""),
    approvalMode: config.get<string>("approvalMode", "risky"),
    sandboxImage: config.get<string>("sandboxImage", ""),
    network: config.get<boolean>("network", false),
  };
}

export function isFile(file: string): boolean {
  try {
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

export interface ServerEvents {
  onStatus(status: ServerStatus, problem: Problem | null): void;
  onClient(client: LanguageClient): void; // a new client is about to start: register handlers
  onCodeActionSession(sessionId: string): void;
}

export class SidehandServer implements vscode.Disposable {
  client: LanguageClient | undefined;
  private process: ChildProcess | undefined;
  private stderrTail = "";
  private stopping = false;
  private accepting = 0; // accept requests in flight: their edits need no second confirmation
  events: ServerEvents | undefined; // set once, before start()

  constructor(
    private readonly context: vscode.ExtensionContext,
    readonly log: vscode.LogOutputChannel,
  ) {}

  managedEnv(): string {
    return path.join(this.context.globalStorageUri.fsPath, "server-env");
  }

  async start(): Promise<void> {
    const settings = readSettings();
    const launch = resolveLaunch(settings, {
      platform: process.platform,
      workspaceFolders: (vscode.workspace.workspaceFolders ?? []).map((f) => f.uri.fsPath),
      trusted: vscode.workspace.isTrusted,
      managedEnv: this.managedEnv(),
      pathDirs: (process.env.PATH ?? "").split(path.delimiter).filter(Boolean),
      isFile,
    });
    if (isProblem(launch)) {
      this.log.warn(`not starting the server: ${launch.detail}`);
      this.events?.onStatus("failed", launch);
      return;
    }
    this.events?.onStatus("starting", null);
    this.log.info(`starting ${launch.command} ${launch.args.join(" ")} (from ${launch.source})`);
    const apiKey = await this.context.secrets.get(API_KEY_SECRET);
    // Not the workspace: nothing there may shadow the server's own packages.
    const cwd = this.context.globalStorageUri.fsPath;
    await fs.promises.mkdir(cwd, { recursive: true });
    const client = new LanguageClient("sidehand", "Sidehand", () => Promise.resolve(this.spawn(launch.command, launch.args, cwd)), {
      documentSelector: [{ scheme: "file" }, { scheme: "untitled" }],
      outputChannel: this.log,
      initializationOptions: initializationOptions(settings, apiKey),
      stdioOptions: {
        stdout: () => undefined, // the protocol: read by the client itself
        stderr: (input, channel) => readline.createInterface({ input, crlfDelay: Infinity }).on("line", (line) => {
          channel.appendLine(line);
          this.stderrTail = (this.stderrTail + line + "\n").slice(-STDERR_TAIL);
        }),
      },
      errorHandler: {
        error: () => ({ action: ErrorAction.Continue }),
        closed: () => ({ action: CloseAction.DoNotRestart, handled: true }), // the panel offers a restart
      },
      middleware: {
        executeCommand: async (command, args, next) => {
          const result: unknown = await next(command, args);
          if (command === "sidehand.runCodeAction" && typeof result === "object" && result && "sessionId" in result)
            this.events?.onCodeActionSession(String(result.sessionId));
          return result;
        },
        workspace: {
          // The change annotation asks VS Code to preview the edit first: right for a code
          // action's result, redundant after the user pressed Accept on that very change.
          handleApplyEdit: (params, next) =>
            next(this.accepting > 0 ? { ...params, edit: withoutConfirmation(params.edit) } : params, CancellationToken.None),
        },
      },
    });
    this.client = client;
    this.events?.onClient(client);
    try {
      const began = performance.now();
      await client.start();
      this.log.info(`server ready in ${(performance.now() - began).toFixed(0)} ms`);
      this.events?.onStatus("ready", null);
    } catch (error) {
      this.log.error(`the server did not start: ${String(error)}`);
      if (!this.stopping && this.client === client) await this.reportExit();
    }
  }

  private exited: Promise<{ code: number | null; signal: string | null }> | undefined;

  private spawn(command: string, args: string[], cwd: string): ChildProcess {
    this.stderrTail = "";
    const child = spawn(command, args, { cwd, env: process.env, stdio: "pipe" });
    this.process = child;
    this.exited = new Promise((resolve) => {
      child.on("error", (error) => {
        this.stderrTail += `${error.message}\n`;
        resolve({ code: null, signal: null });
      });
      child.on("exit", (code, signal) => resolve({ code, signal }));
    });
    void this.exited.then(() => {
      if (this.process === child && !this.stopping) void this.reportExit();
    });
    return child;
  }

  private async reportExit(): Promise<void> {
    const exit = this.exited ? await this.exited : { code: null, signal: null };
    this.process = undefined;
    this.events?.onStatus("failed", diagnoseExit(exit.code, exit.signal, this.stderrTail));
  }

  async stop(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    if (!client) return;
    this.stopping = true;
    this.log.info("stopping the server");
    try {
      if (client.isRunning()) await client.stop(5000);
    } catch (error) {
      this.log.warn(`stopping the server: ${String(error)}`);
    } finally {
      this.process?.kill();
      this.process = undefined;
      this.stopping = false;
    }
    this.events?.onStatus("stopped", null);
  }

  private queue: Promise<void> = Promise.resolve();
  private queued: Promise<void> | undefined;

  /** Restarts run one after another; one that is waiting to run covers any asked for meanwhile. */
  restart(): Promise<void> {
    this.queued ??= this.queue = this.queue.then(async () => {
      this.queued = undefined;
      await this.stop();
      await this.start();
    });
    return this.queued;
  }

  /** A `sidehand/*` request; a JSON-RPC error arrives as a ResponseError (with its code). */
  async request<T>(method: string, params: unknown): Promise<T> {
    const client = this.client;
    if (!client?.isRunning()) throw new Error("The Sidehand server is not running: see the panel, or run Sidehand: Restart Server.");
    return client.sendRequest<T>(method, params);
  }

  async accept<T>(params: unknown): Promise<T> {
    this.accepting++;
    try {
      return await this.request<T>("sidehand/changes/accept", params);
    } finally {
      this.accepting--;
    }
  }

  dispose(): void {
    void this.stop();
  }
}

function withoutConfirmation(edit: WorkspaceEdit): WorkspaceEdit {
  const annotations = Object.fromEntries(
    Object.entries(edit.changeAnnotations ?? {}).map(([id, annotation]) => [id, { ...annotation, needsConfirmation: false }]),
  );
  return { ...edit, changeAnnotations: annotations };
}

export function errorCode(error: unknown): number | undefined {
  return error instanceof ResponseError ? error.code : undefined;
}

export function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
