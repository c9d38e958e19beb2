// The side panel: a webview view that renders the host's ViewState. The page loads one script and
// one stylesheet from the extension (strict CSP, a fresh nonce, nothing remote); the host sends it
// the whole state when it (re)appears, then each action as it happens.

import { randomBytes } from "node:crypto";
import * as vscode from "vscode";
import type { ChangeReview } from "./review";
import type { Sessions } from "./sessions";
import type { Action } from "./shared/view";

// Messages from the webview (webview/main.ts sends them).
export type PanelMessage =
  | { type: "ready" }
  | { type: "newSession" }
  | { type: "openSession"; sessionId: string }
  | { type: "prompt"; text: string }
  | { type: "cancel" }
  | { type: "permission"; id: string; optionId: string | null }
  | { type: "attach"; what: "selection" | "file" }
  | { type: "detach"; index: number }
  | { type: "openChange"; path: string }
  | { type: "decideFile"; path: string; accept: boolean }
  | { type: "decideAll"; accept: boolean }
  | { type: "restore"; checkpointId: string }
  | { type: "run"; command: string; args?: unknown[] };

// Commands a problem's buttons may run (the webview cannot name any other).
const PROBLEM_COMMANDS = new Set([
  "sidehand.installServer",
  "sidehand.restartServer",
  "sidehand.showServerLog",
  "sidehand.setApiKey",
  "sidehand.checkSandbox",
  "workbench.action.openSettings",
]);

export class Panel implements vscode.WebviewViewProvider {
  private view: vscode.WebviewView | undefined;
  sessions!: Sessions;
  review!: ChangeReview;

  constructor(private readonly extensionUri: vscode.Uri) {}

  post(action: Action): void {
    void this.view?.webview.postMessage(action);
  }

  show(focus: boolean): void {
    if (this.view) this.view.show(!focus);
    else void vscode.commands.executeCommand("sidehand.panel.focus");
  }

  resolveWebviewView(view: vscode.WebviewView): void {
    this.view = view;
    const webview = view.webview;
    const media = vscode.Uri.joinPath(this.extensionUri, "dist");
    webview.options = { enableScripts: true, localResourceRoots: [media] };
    const nonce = randomBytes(16).toString("base64");
    const script = webview.asWebviewUri(vscode.Uri.joinPath(media, "webview.js"));
    const style = webview.asWebviewUri(vscode.Uri.joinPath(media, "webview.css"));
    webview.html = `<!DOCTYPE html>
<html lang="en"><head><meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src ${webview.cspSource}; img-src ${webview.cspSource} data:; font-src ${webview.cspSource}; script-src 'nonce-${nonce}';">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link rel="stylesheet" href="${style.toString()}"><title>Sidehand</title></head>
<body><main id="app" aria-live="polite"></main><script nonce="${nonce}" src="${script.toString()}"></script></body></html>`;
    view.onDidDispose(() => (this.view = undefined));
    webview.onDidReceiveMessage((message: PanelMessage) => this.receive(message));
  }

  private receive(message: PanelMessage): void {
    const sessions = this.sessions;
    const current = sessions.view.current;
    switch (message.type) {
      case "ready":
        return this.post({ type: "snapshot", view: sessions.view });
      case "newSession":
        return void sessions.newSession();
      case "openSession":
        return void sessions.open(message.sessionId);
      case "prompt":
        return void sessions.prompt(message.text);
      case "cancel":
        return void sessions.cancel();
      case "permission":
        return sessions.answerPermission(message.id, message.optionId);
      case "attach":
        return message.what === "selection" ? sessions.attachSelection() : sessions.attachFile();
      case "detach":
        return sessions.dispatch({ type: "detach", index: message.index });
      case "openChange":
        return void (current && this.review.openDiff(current, message.path));
      case "decideFile":
        return void (current && this.review.decideFile(message.accept, current, message.path));
      case "decideAll":
        return void this.review.decideAll(message.accept);
      case "restore":
        return void sessions.restoreCheckpoint(message.checkpointId);
      case "run":
        if (PROBLEM_COMMANDS.has(message.command)) void vscode.commands.executeCommand(message.command, ...(message.args ?? []));
        return;
    }
  }
}
