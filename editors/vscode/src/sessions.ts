// The panel's state on the extension side: sessions, their transcripts (from the server's update
// stream), permission prompts and prompt attachments. Every change goes through `dispatch`, which
// updates the host's copy and forwards the same action to the webview.

import * as path from "node:path";
import * as vscode from "vscode";
import type { CancellationToken, LanguageClient } from "vscode-languageclient/node";
import { problem, sandboxProblem } from "./launch";
import type { ChangeReview } from "./review";
import { errorCode, errorText, type ServerEvents, type SidehandServer } from "./server";
import { ErrorCodes, type Checkpoint, type PermissionRequest, type SandboxStatus, type SessionInfo, type SessionUpdateNotification } from "./shared/protocol";
import { apply, emptyView, isRunning, type Action, type Attachment, type Problem, type ServerStatus } from "./shared/view";

type PermissionAnswer = { outcome: { outcome: "selected"; optionId: string } | { outcome: "cancelled" } };

export class Sessions implements ServerEvents {
  readonly view = emptyView();
  private readonly answers = new Map<string, (answer: PermissionAnswer) => void>();
  private readonly loaded = new Set<string>(); // sessions whose history this server process has sent
  private nextPermission = 0;
  review: ChangeReview | undefined;

  constructor(
    private readonly server: SidehandServer,
    private readonly post: (action: Action) => void,
    private readonly reveal: () => void,
  ) {}

  dispatch(action: Action): void {
    apply(this.view, action);
    this.post(action);
  }

  // ---- server events ----------------------------------------------------------------------
  onClient(client: LanguageClient): void {
    client.onNotification("sidehand/session/update", (n: SessionUpdateNotification) => this.onUpdate(n));
    // Sent once the server has contacted the Docker engine, before any session is asked for.
    client.onNotification("sidehand/sandbox/status", (status: SandboxStatus) => this.dispatch({ type: "sandbox", problem: sandboxProblem(status) }));
    client.onRequest("sidehand/session/requestPermission", (params: PermissionRequest, token: CancellationToken) => this.askPermission(params, token));
  }

  onStatus(status: ServerStatus, trouble: Problem | null): void {
    if (status !== "ready") {
      for (const [id, transcript] of Object.entries(this.view.transcripts))
        if (isRunning(transcript)) {
          this.dispatch({ type: "update", notification: { sessionId: id, seq: transcript.lastSeq + 1, update: { sessionUpdate: "state", state: "idle" } } });
          if (status === "failed") this.dispatch({ type: "notice", sessionId: id, level: "error", text: "The server stopped during this turn." });
        }
      for (const answer of this.answers.values()) answer({ outcome: { outcome: "cancelled" } });
      this.answers.clear();
    }
    this.dispatch({ type: "server", status, problem: trouble });
    if (status === "ready") {
      // A new process numbers its updates from 0 again: the current session is replayed afresh.
      const current = this.view.current;
      const reloaded = current !== null && this.loaded.has(current);
      this.loaded.clear();
      void this.refreshSessions();
      if (current)
        void this.open(current).then(() => {
          if (reloaded) this.dispatch({ type: "notice", sessionId: current, level: "info", text: "The server restarted: this session was reloaded from its log." });
        });
    }
  }

  private onUpdate(notification: SessionUpdateNotification): void {
    this.dispatch({ type: "update", notification });
    const kind = notification.update.sessionUpdate;
    if (kind === "turn_end" || (kind === "tool_call" && notification.update.status === "completed"))
      void this.review?.refresh(notification.sessionId);
  }

  private askPermission(request: PermissionRequest, token: CancellationToken): Promise<PermissionAnswer> {
    const id = `permission-${this.nextPermission++}`;
    this.dispatch({ type: "permission", pending: { id, request } });
    this.reveal();
    return new Promise((resolve) => {
      const done = (answer: PermissionAnswer) => {
        this.answers.delete(id);
        this.dispatch({ type: "permissionDone", id });
        resolve(answer);
      };
      this.answers.set(id, done);
      token.onCancellationRequested(() => done({ outcome: { outcome: "cancelled" } })); // the turn was cancelled
    });
  }

  answerPermission(id: string, optionId: string | null): void {
    this.answers.get(id)?.(optionId ? { outcome: { outcome: "selected", optionId } } : { outcome: { outcome: "cancelled" } });
  }

  // ---- requests from the panel and the palette -------------------------------------------
  async refreshSessions(): Promise<void> {
    try {
      const { sessions } = await this.server.request<{ sessions: SessionInfo[] }>("sidehand/session/list", {});
      this.dispatch({ type: "sessions", sessions });
    } catch (error) {
      this.server.log.warn(`listing sessions: ${errorText(error)}`);
    }
  }

  async newSession(): Promise<string | undefined> {
    try {
      const { sessionId } = await this.server.request<{ sessionId: string }>("sidehand/session/new", {});
      this.loaded.add(sessionId);
      this.dispatch({ type: "reset", sessionId });
      this.dispatch({ type: "select", sessionId });
      await this.refreshSessions();
      return sessionId;
    } catch (error) {
      this.showError(undefined, error);
      return undefined;
    }
  }

  /** Show a session; a stored one is loaded first (the server replays its history). */
  async open(sessionId: string): Promise<void> {
    this.dispatch({ type: "select", sessionId });
    if (!this.loaded.has(sessionId)) {
      this.dispatch({ type: "reset", sessionId });
      try {
        await this.server.request("sidehand/session/load", { sessionId });
        this.loaded.add(sessionId);
      } catch (error) {
        this.showError(sessionId, error);
        return;
      }
      await this.loadCheckpoints(sessionId);
    }
    await this.review?.refresh(sessionId);
  }

  onCodeActionSession(sessionId: string): void {
    // A code action started this session on the server; its updates are already arriving.
    this.loaded.add(sessionId);
    this.dispatch({ type: "select", sessionId });
    this.reveal();
    void this.refreshSessions();
  }

  async prompt(text: string): Promise<void> {
    const sessionId = this.view.current ?? (await this.newSession());
    if (!sessionId || !text.trim()) return;
    const context = this.view.attachments.map(({ type, uri, text: selected, range }) => ({ type, uri, text: selected, range }));
    while (this.view.attachments.length) this.dispatch({ type: "detach", index: 0 });
    try {
      await this.server.request("sidehand/session/prompt", { sessionId, prompt: text, context });
    } catch (error) {
      this.showError(sessionId, error);
    }
    await Promise.all([this.refreshSessions(), this.review?.refresh(sessionId)]);
  }

  /** The engine problem's Retry: the server contacts the engine again and says how it went. */
  async checkSandbox(): Promise<void> {
    try {
      const status = await this.server.request<SandboxStatus | null>("sidehand/sandbox/check", {});
      if (status) this.dispatch({ type: "sandbox", problem: sandboxProblem(status) });
    } catch (error) {
      if (errorCode(error) !== ErrorCodes.methodNotFound) void vscode.window.showErrorMessage(`Sidehand: ${errorText(error)}`);
    }
  }

  async cancel(): Promise<void> {
    const sessionId = this.view.current;
    if (!sessionId) return;
    try {
      await this.server.request("sidehand/session/cancel", { sessionId });
    } catch (error) {
      this.showError(sessionId, error);
    }
  }

  private async loadCheckpoints(sessionId: string): Promise<void> {
    try {
      const { checkpoints } = await this.server.request<{ checkpoints: Checkpoint[] }>("sidehand/checkpoints/list", { sessionId });
      this.dispatch({ type: "checkpoints", sessionId, checkpoints });
    } catch (error) {
      if (errorCode(error) !== ErrorCodes.methodNotFound) this.showError(sessionId, error); // an older server: no checkpoints
    }
  }

  async restoreCheckpoint(checkpointId: string): Promise<void> {
    const sessionId = this.view.current;
    if (!sessionId) return;
    try {
      await this.server.request("sidehand/checkpoints/restore", { sessionId, checkpointId });
      this.dispatch({ type: "notice", sessionId, level: "info", text: "Restored the checkpoint (the restore itself can be undone from the checkpoint it added)." });
      await this.review?.refresh(sessionId);
    } catch (error) {
      const text = errorCode(error) === ErrorCodes.methodNotFound ? "This server cannot restore checkpoints yet: update Sidehand." : errorText(error);
      this.dispatch({ type: "notice", sessionId, level: "error", text: `Restore failed: ${text}` });
    }
  }

  attachSelection(): void {
    const editor = vscode.window.activeTextEditor;
    if (!editor) return;
    const { document, selection } = editor;
    const name = path.basename(document.uri.path);
    if (selection.isEmpty) return this.attachFile();
    const range = { start: { line: selection.start.line, character: selection.start.character }, end: { line: selection.end.line, character: selection.end.character } };
    const label = `${name}:${selection.start.line + 1}-${selection.end.line + 1}`;
    this.dispatch({ type: "attach", attachment: { type: "selection", uri: document.uri.toString(), label, text: document.getText(selection), range } });
  }

  attachFile(): void {
    const document = vscode.window.activeTextEditor?.document;
    if (!document) return;
    const attachment: Attachment = { type: "file", uri: document.uri.toString(), label: path.basename(document.uri.path) };
    this.dispatch({ type: "attach", attachment });
  }

  showError(sessionId: string | undefined, error: unknown): void {
    if (errorCode(error) === ErrorCodes.configuration) {
      this.dispatch({ type: "server", status: this.view.server.status, problem: problem("noModel", errorText(error)) });
      return;
    }
    if (sessionId) this.dispatch({ type: "notice", sessionId, level: "error", text: errorText(error) });
    else void vscode.window.showErrorMessage(`Sidehand: ${errorText(error)}`);
  }
}
