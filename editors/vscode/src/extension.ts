// Entry point: wires the server, the panel, the change review and the commands together. All the
// agent's logic is in the Python server; this file only connects VS Code to it.

import * as vscode from "vscode";
import { installServer } from "./install";
import { RESTART_KEYS } from "./launch";
import { Panel } from "./panel";
import { AGENT_SCHEME, ChangeReview } from "./review";
import { API_KEY_SECRET, SidehandServer } from "./server";
import { Sessions } from "./sessions";

let server: SidehandServer | undefined;

export function activate(context: vscode.ExtensionContext): void {
  const started = performance.now();
  const log = vscode.window.createOutputChannel("Sidehand", { log: true });
  const panel = new Panel(context.extensionUri);
  const srv = (server = new SidehandServer(context, log));
  // The server reports to the sessions, which drive the panel and the review.
  const s = (srv.events = new Sessions(srv, (action) => panel.post(action), () => panel.show(false)));
  const review = (s.review = panel.review = new ChangeReview(srv, s));
  panel.sessions = s;

  let restartTimer: NodeJS.Timeout | undefined;
  const command = (id: string, run: (...args: never[]) => unknown) => vscode.commands.registerCommand(id, run);
  context.subscriptions.push(
    log,
    srv,
    vscode.window.registerWebviewViewProvider("sidehand.panel", panel),
    vscode.workspace.registerTextDocumentContentProvider(AGENT_SCHEME, review),
    vscode.languages.registerCodeLensProvider({ scheme: AGENT_SCHEME }, review),
    command("sidehand.newSession", async () => {
      panel.show(true);
      await s.newSession();
    }),
    command("sidehand.askAboutSelection", () => {
      s.attachSelection();
      panel.show(true);
    }),
    command("sidehand.acceptAll", () => review.decideAll(true)),
    command("sidehand.rejectAll", () => review.decideAll(false)),
    command("sidehand.cancel", () => s.cancel()),
    command("sidehand.showServerLog", () => log.show()),
    command("sidehand.restartServer", () => srv.restart()),
    command("sidehand.checkSandbox", () => s.checkSandbox()),
    command("sidehand.installServer", async () => {
      if (await installServer(srv.managedEnv(), log)) await srv.restart();
    }),
    command("sidehand.setApiKey", async () => {
      const key = await vscode.window.showInputBox({ prompt: "API key for the model provider (kept in VS Code's secret storage)", password: true, ignoreFocusOut: true });
      if (key) await context.secrets.store(API_KEY_SECRET, key);
    }),
    command("sidehand.clearApiKey", () => context.secrets.delete(API_KEY_SECRET)),
    command("sidehand.acceptFile", (sessionId?: string, file?: string) => review.decideFile(true, sessionId, file)),
    command("sidehand.rejectFile", (sessionId?: string, file?: string) => review.decideFile(false, sessionId, file)),
    command("sidehand.acceptHunk", (sessionId?: string, file?: string, index?: number) => review.decideHunk(true, sessionId, file, index)),
    command("sidehand.rejectHunk", (sessionId?: string, file?: string, index?: number) => review.decideHunk(false, sessionId, file, index)),
    // The server reads its settings once, at initialize: a relevant change means a restart (one
    // for a burst of changes: the settings editor saves as the user types).
    vscode.workspace.onDidChangeConfiguration((event) => {
      if (!RESTART_KEYS.some((key) => event.affectsConfiguration(`sidehand.${key}`))) return;
      clearTimeout(restartTimer);
      log.info("settings changed: restarting the server");
      restartTimer = setTimeout(() => void srv.restart(), 1000);
    }),
    context.secrets.onDidChange((event) => {
      if (event.key === API_KEY_SECRET) void srv.restart();
    }),
    vscode.workspace.onDidGrantWorkspaceTrust(() => void srv.restart()),
  );
  void srv.start();
  log.info(`activated in ${(performance.now() - started).toFixed(1)} ms`);
}

export async function deactivate(): Promise<void> {
  await server?.stop();
}
