// ViewState → HTML, one string per section and per transcript item (main.ts replaces only the
// pieces whose HTML changed, so focus and open/closed tool calls survive a streamed update).
// Every piece of text from the server goes through escapeHtml or markdown-it.

import type { ToolContent } from "../src/shared/protocol";
import { isRunning, type FileSummary, type Item, type PendingPermission, type ToolCall, type Transcript, type ViewState } from "../src/shared/view";
import { escapeHtml as esc, highlight, renderMarkdown } from "./markdown";

export const OUTPUT_PREVIEW = 4_000; // characters of a tool's output shown before "Show all"

/** UI state of the page itself: which tool calls are open, which outputs are shown whole. */
export interface LocalState { open: Set<string>; whole: Set<string> }

const button = (label: string, action: string, data: Record<string, string> = {}, extra = "") =>
  `<button type="button" data-action="${action}"${Object.entries(data).map(([k, v]) => ` data-${k}="${esc(v)}"`).join("")}${extra}>${esc(label)}</button>`;

export function header(view: ViewState): string {
  const options = view.sessions
    .map((s) => `<option value="${esc(s.sessionId)}"${s.sessionId === view.current ? " selected" : ""}>${esc(s.title || `Session of ${new Date(s.created * 1000).toLocaleString()}`)} · ${esc(s.status)}</option>`)
    .join("");
  const none = view.current && view.sessions.some((s) => s.sessionId === view.current) ? "" : `<option value="" selected>${view.current ? "New session" : "No session"}</option>`;
  return `<label class="sr-only" for="session-select">Session</label>
<select id="session-select" data-action="openSession" aria-label="Session">${none}${options}</select>${button("New session", "newSession", {}, ' class="secondary"')}`;
}

export function banner(view: ViewState): string {
  const { status, problem } = view.server;
  if (problem) {
    const actions = problem.actions.map((a) => button(a.label, "run", { command: a.command, args: JSON.stringify(a.args ?? []) })).join("");
    return `<div class="problem" role="alert"><strong>${esc(problem.title)}</strong><pre class="detail">${esc(problem.detail)}</pre><div class="actions">${actions}</div></div>`;
  }
  if (status === "starting") return `<div class="status">Starting the Sidehand server…</div>`;
  if (status === "stopped") return `<div class="status">The server is stopped. ${button("Restart server", "run", { command: "sidehand.restartServer", args: "[]" })}</div>`;
  return "";
}

export function plan(transcript: Transcript | undefined): string {
  if (!transcript?.plan.length) return "";
  const mark = { pending: "○", in_progress: "◐", completed: "●" } as const;
  const entries = transcript.plan.map((e) => `<li class="plan-${e.status} priority-${e.priority}"><span aria-hidden="true">${mark[e.status]}</span> <span class="sr-only">${e.status.replace("_", " ")}:</span>${esc(e.content)}</li>`).join("");
  return `<section class="plan" aria-label="Plan"><h2>Plan</h2><ol>${entries}</ol></section>`;
}

export function item(entry: Item, local: LocalState): string {
  switch (entry.kind) {
    case "user":
      return `<div class="msg user"><div class="who">You</div><div class="text">${esc(entry.text)}</div></div>`;
    case "agent":
      return `<div class="msg agent${entry.streaming ? " streaming" : ""}"><div class="who">Sidehand</div><div class="markdown">${renderMarkdown(entry.text)}</div></div>`;
    case "tool":
      return tool(entry.call, local);
    case "checkpoint": {
      const when = new Date(entry.checkpoint.timestamp * 1000).toLocaleTimeString();
      return `<div class="checkpoint"><span>Checkpoint · ${esc(entry.checkpoint.label)} · ${esc(when)}</span>${button("Restore", "restore", { id: entry.checkpoint.checkpointId })}</div>`;
    }
    case "notice":
      return `<div class="notice ${entry.level}" role="${entry.level === "error" ? "alert" : "status"}">${esc(entry.text)}</div>`;
  }
}

const STATUS_LABEL: Record<string, string> = { pending: "pending", in_progress: "running", completed: "done", failed: "failed" };

function tool(call: ToolCall, local: LocalState): string {
  const key = `tool:${call.id}`;
  const status = call.awaitingApproval ? "awaiting approval" : (STATUS_LABEL[call.status] ?? call.status);
  const body = call.content.map((c, i) => toolContent(c, `${key}:${i}`, local)).join("") || inputPreview(call);
  return `<details class="tool tool-${call.status}" data-key="${esc(key)}"${local.open.has(key) ? " open" : ""}>
<summary><span class="badge badge-${call.awaitingApproval ? "ask" : call.status}">${esc(status)}</span> <span class="title">${esc(call.title)}</span></summary>
<div class="tool-body">${body}</div></details>`;
}

function inputPreview(call: ToolCall): string {
  const input = JSON.stringify(call.rawInput, null, 2);
  return input && input !== "{}" ? `<pre><code>${highlight(clip(input, OUTPUT_PREVIEW), "json")}</code></pre>` : "";
}

function clip(text: string, limit: number): string {
  return text.length > limit ? text.slice(0, limit) : text;
}

function toolContent(content: ToolContent, key: string, local: LocalState): string {
  const long = (text: string, language: string) => {
    const whole = local.whole.has(key) || text.length <= OUTPUT_PREVIEW;
    const shown = whole ? text : text.slice(0, OUTPUT_PREVIEW);
    const more = whole ? "" : `<div class="more">${esc(`… ${(text.length - OUTPUT_PREVIEW).toLocaleString()} more characters`)} ${button("Show all", "showAll", { key })}</div>`;
    return `<pre><code>${highlight(shown, language)}</code></pre>${more}`;
  };
  switch (content.type) {
    case "diff":
      return `<div class="path">${esc(content.path)}</div>${long(content.unifiedDiff || "(no textual change)", "diff")}`;
    case "output": {
      const exit = content.timedOut ? "timed out" : `exit ${content.exitCode ?? "?"}`;
      return `${long(content.text || "(no output)", "")}<div class="exit${content.exitCode ? " failed" : ""}">${esc(exit)}${content.truncated ? " · cut in the middle (the whole output is in the session folder)" : ""}</div>`;
    }
    case "text":
      return content.text ? long(content.text, "") : "";
  }
}

export function permissions(pending: PendingPermission[]): string {
  return pending
    .map(({ id, request }) => {
      const input = request.toolCall.rawInput ?? {};
      // A command is shown as it will run; any other action as its arguments (an edit's old and new text).
      const [what, language] = request.toolCall.tool === "bash" && typeof input.command === "string" ? [input.command, "bash"] : [JSON.stringify(input, null, 2), "json"];
      const options = request.options.map((o, i) => button(o.name, "permission", { id, option: o.optionId }, `${o.kind.startsWith("reject") ? ' class="secondary"' : ""}${i === 0 ? " data-autofocus" : ""}`)).join("");
      return `<div class="permission" role="group" aria-label="Approval needed">
<div><strong>Approve ${esc(request.toolCall.title ?? request.toolCall.tool ?? "this action")}?</strong> <span class="risk risk-${esc(request.risk)}">${esc(request.risk)} risk</span></div>
<pre><code>${highlight(clip(what, OUTPUT_PREVIEW), language)}</code></pre><div class="reason">${esc(request.reason)}</div><div class="actions">${options}</div></div>`;
    })
    .join("");
}

export function changes(files: FileSummary[] | undefined): string {
  if (!files?.length) return "";
  const rows = files
    .map((f) => {
      const open = f.binary ? `<span class="file">${esc(f.path)}</span>` : button(f.path, "openChange", { path: f.path }, ' class="link file"');
      return `<li><span class="change-${esc(f.status)}" title="${esc(f.status)}">${esc(f.status[0]?.toUpperCase() ?? "?")}</span>${open}<span class="hunks">${f.binary ? "binary" : `${f.hunks} change${f.hunks === 1 ? "" : "s"}`}</span>${button("Accept", "decideFile", { path: f.path, accept: "1" }, ` aria-label="Accept ${esc(f.path)}"`)}${button("Reject", "decideFile", { path: f.path, accept: "" }, ` class="secondary" aria-label="Reject ${esc(f.path)}"`)}</li>`;
    })
    .join("");
  return `<section class="changes" aria-label="Changes"><h2>Changes</h2><ul>${rows}</ul><div class="actions">${button("Accept all", "decideAll", { accept: "1" })}${button("Reject all", "decideAll", { accept: "" }, ' class="secondary"')}</div></section>`;
}

export function usage(transcript: Transcript | undefined): string {
  const u = transcript?.usage;
  if (!u) return "";
  const n = (x: number) => x.toLocaleString();
  const cost = u.session.cost === null ? "" : ` · $${u.session.cost.toFixed(4)}`;
  return `<span title="${esc(u.model)}">${n(u.session.promptTokens)} tokens in · ${n(u.session.completionTokens)} out${cost}</span>`;
}

export function composer(view: ViewState): string {
  const running = isRunning(view.current ? view.transcripts[view.current] : undefined);
  const chips = view.attachments.map((a, i) => `<span class="chip">${esc(a.label)}${button("×", "detach", { index: String(i) }, ` aria-label="Remove ${esc(a.label)}"`)}</span>`).join("");
  return `<div class="chips">${chips}</div><div class="actions">${button("+ Selection", "attach", { what: "selection" }, ' class="secondary"')}${button("+ File", "attach", { what: "file" }, ' class="secondary"')}<span class="spacer"></span>${running ? button("Cancel", "cancel", {}, ' class="secondary"') : button("Send", "send", {}, view.server.status !== "ready" ? " disabled" : "")}</div>`;
}
