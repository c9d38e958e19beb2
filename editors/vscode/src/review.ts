// Reviewing a session's changes in VS Code's own diff editor: the workspace file on the left, the
// agent's version (a read-only virtual document) on the right; Accept / Reject per file, per hunk
// (CodeLens and editor actions) and for everything. Accepting goes through the server, which
// sends one workspace/applyEdit, so the change joins the editor's undo history.

import * as vscode from "vscode";
import { errorCode, errorText, type SidehandServer } from "./server";
import type { Sessions } from "./sessions";
import { hunkAt, hunkSpan, pathInside } from "./shared/hunks";
import { ErrorCodes, type ChangedFile, type Hunk } from "./shared/protocol";

export const AGENT_SCHEME = "sidehand-agent";

interface Target { sessionId: string; file: ChangedFile }
type Selection = { paths: string[] } | { hunks: { path: string; indexes: number[] }[] } | Record<string, never>;

export class ChangeReview implements vscode.TextDocumentContentProvider, vscode.CodeLensProvider {
  private readonly files = new Map<string, ChangedFile[]>(); // session id -> its change set
  private readonly changed = new vscode.EventEmitter<vscode.Uri>();
  private readonly lensesChanged = new vscode.EventEmitter<void>();
  readonly onDidChange = this.changed.event;
  readonly onDidChangeCodeLenses = this.lensesChanged.event;

  constructor(
    private readonly server: SidehandServer,
    private readonly sessions: Sessions,
  ) {}

  // The agent's side of a diff: `sidehand-agent:/<path>?<session id>`. A file that does not exist
  // on one side (added or deleted) is shown as an empty document on that side.
  static agentUri(sessionId: string, file: string, empty = false): vscode.Uri {
    return vscode.Uri.from({ scheme: AGENT_SCHEME, path: `/${file}`, query: sessionId, fragment: empty ? "empty" : "" });
  }

  provideTextDocumentContent(uri: vscode.Uri): string {
    if (uri.fragment === "empty") return "";
    return this.find(uri.query, uri.path.slice(1))?.newText ?? "";
  }

  private find(sessionId: string, file: string): ChangedFile | undefined {
    return this.files.get(sessionId)?.find((f) => f.path === file);
  }

  async refresh(sessionId: string): Promise<void> {
    let files: ChangedFile[];
    try {
      ({ files } = await this.server.request<{ files: ChangedFile[] }>("sidehand/changes/list", { sessionId }));
    } catch (error) {
      this.server.log.warn(`listing changes of ${sessionId}: ${errorText(error)}`);
      return;
    }
    const before = this.files.get(sessionId) ?? [];
    this.files.set(sessionId, files);
    const summaries = files.map((f) => ({ path: f.path, status: f.status, binary: f.binary, hunks: f.hunks.length }));
    this.sessions.dispatch({ type: "changes", sessionId, files: summaries });
    for (const file of new Set([...before, ...files].map((f) => f.path))) this.changed.fire(ChangeReview.agentUri(sessionId, file));
    this.lensesChanged.fire();
  }

  /** The workspace file a change path names; never outside the workspace folder. */
  private workspaceUri(sessionId: string, file: string): vscode.Uri | undefined {
    const cwd = this.sessions.view.sessions.find((s) => s.sessionId === sessionId)?.cwd ?? vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
    const inside = cwd ? pathInside(vscode.Uri.file(cwd).path, file) : undefined;
    return inside === undefined ? undefined : vscode.Uri.file(inside);
  }

  async openDiff(sessionId: string, file: string): Promise<void> {
    const change = this.find(sessionId, file);
    const local = this.workspaceUri(sessionId, file);
    if (!change || !local) {
      void vscode.window.showErrorMessage(`Sidehand: no reviewable change to ${JSON.stringify(file)} in this session.`);
      return;
    }
    if (change.binary) {
      void vscode.window.showInformationMessage(`Sidehand: ${file} is a binary file: accept or reject it whole.`);
      return;
    }
    const left = change.status === "added" ? ChangeReview.agentUri(sessionId, file, true) : local;
    const right = ChangeReview.agentUri(sessionId, file, change.status === "deleted");
    await vscode.commands.executeCommand("vscode.diff", left, right, `${file} ↔ Sidehand (${change.status})`, { preview: false });
  }

  provideCodeLenses(document: vscode.TextDocument): vscode.CodeLens[] {
    // Shown where the diff editor shows CodeLens (setting diffEditor.codeLens); the same actions
    // are on the diff editor's title bar and context menu for the hunk under the cursor.
    const change = this.find(document.uri.query, document.uri.path.slice(1));
    if (!change || document.uri.fragment === "empty") return [];
    return change.hunks.flatMap((hunk) => {
      const line = Math.min(hunkSpan(hunk, "new").start, Math.max(document.lineCount - 1, 0));
      const range = new vscode.Range(line, 0, line, 0);
      const args = [document.uri.query, change.path, hunk.index];
      return [
        new vscode.CodeLens(range, { title: "$(check) Accept change", command: "sidehand.acceptHunk", arguments: args }),
        new vscode.CodeLens(range, { title: "$(close) Reject change", command: "sidehand.rejectHunk", arguments: args }),
      ];
    });
  }

  /** The change shown in the active diff editor, and the hunk under the cursor on either side. */
  private active(): (Target & { hunk: Hunk | undefined }) | undefined {
    const input = vscode.window.tabGroups.activeTabGroup.activeTab?.input;
    if (!(input instanceof vscode.TabInputTextDiff) || input.modified.scheme !== AGENT_SCHEME) return undefined;
    const sessionId = input.modified.query;
    const file = this.find(sessionId, input.modified.path.slice(1));
    if (!file) return undefined;
    const editor = vscode.window.activeTextEditor;
    const onRight = editor?.document.uri.toString() === input.modified.toString();
    const onLeft = editor?.document.uri.toString() === input.original.toString();
    const line = editor?.selection.active.line ?? 0;
    const hunk = onRight || onLeft ? hunkAt(file.hunks, line, onRight ? "new" : "old") : file.hunks[0];
    return { sessionId, file, hunk };
  }

  async decideHunk(accept: boolean, sessionId?: string, file?: string, index?: number): Promise<void> {
    let target: { sessionId: string; path: string; index: number } | undefined;
    if (sessionId && file !== undefined && index !== undefined) target = { sessionId, path: file, index };
    else {
      const active = this.active();
      if (active?.hunk) target = { sessionId: active.sessionId, path: active.file.path, index: active.hunk.index };
    }
    if (!target) {
      void vscode.window.showInformationMessage("Sidehand: put the cursor on a change in a Sidehand diff first.");
      return;
    }
    await this.decide(accept, target.sessionId, { hunks: [{ path: target.path, indexes: [target.index] }] });
  }

  async decideFile(accept: boolean, sessionId?: string, file?: string): Promise<void> {
    const active = sessionId && file ? { sessionId, path: file } : (() => {
      const a = this.active();
      return a && { sessionId: a.sessionId, path: a.file.path };
    })();
    if (active) await this.decide(accept, active.sessionId, { paths: [active.path] });
  }

  async decideAll(accept: boolean): Promise<void> {
    const sessionId = this.sessions.view.current;
    if (!sessionId) return;
    if (!this.files.get(sessionId)?.length) await this.refresh(sessionId);
    if (!this.files.get(sessionId)?.length) {
      void vscode.window.showInformationMessage("Sidehand: this session has no changes to review.");
      return;
    }
    await this.decide(accept, sessionId, {});
  }

  private async decide(accept: boolean, sessionId: string, selection: Selection, force = false): Promise<void> {
    try {
      if (accept) {
        const result = await this.server.accept<{ applied: boolean; written: string[] }>({ sessionId, ...selection, write: "editor", force });
        if (result.applied) await this.save(sessionId, result.written);
        else void vscode.window.showWarningMessage("Sidehand: VS Code did not apply the change (the file changed meanwhile?). Nothing was written.");
      } else await this.server.request("sidehand/changes/reject", { sessionId, ...selection });
    } catch (error) {
      if (accept && errorCode(error) === ErrorCodes.conflict) await this.conflict(sessionId, selection, errorText(error));
      else void vscode.window.showErrorMessage(`Sidehand: ${errorText(error)}`);
    }
    await this.refresh(sessionId);
  }

  private async conflict(sessionId: string, selection: Selection, message: string): Promise<void> {
    // Shown, never overwritten on our own: the user's edits win unless they say otherwise.
    const overwrite = "Overwrite my edits";
    const choice = await vscode.window.showWarningMessage(`Sidehand: ${message}`, { modal: true }, overwrite);
    if (choice === overwrite) await this.decide(true, sessionId, selection, true);
  }

  /** The accepted edits are in the editors' buffers (and undo history); write them to disk. */
  private async save(sessionId: string, written: string[]): Promise<void> {
    for (const file of written) {
      const uri = this.workspaceUri(sessionId, file);
      const document = uri && vscode.workspace.textDocuments.find((d) => d.uri.toString() === uri.toString());
      if (document?.isDirty) await document.save();
    }
  }
}
