// The panel page: applies the host's actions to its copy of the ViewState, redraws what changed
// once per frame, and sends the user's clicks and prompts back to the host.

import type { PanelMessage } from "../src/panel";
import { apply, emptyView, type Action } from "../src/shared/view";
import * as render from "./render";

interface VsCodeApi { postMessage(message: PanelMessage): void; getState(): unknown; setState(state: unknown): void }
declare function acquireVsCodeApi(): VsCodeApi;

const vscode = acquireVsCodeApi();
const saved = (vscode.getState() ?? {}) as { draft?: string; open?: string[] };
const view = emptyView();
const local: render.LocalState = { open: new Set(saved.open), whole: new Set() };
const seenPermissions = new Set<string>();

document.getElementById("app")!.innerHTML = `
<header id="header" class="bar"></header>
<div id="banner"></div>
<div id="plan"></div>
<div id="transcript" role="log" aria-label="Conversation"></div>
<div id="permissions"></div>
<div id="changes"></div>
<footer><div id="usage" class="usage"></div>
<label class="sr-only" for="prompt">Ask Sidehand</label>
<textarea id="prompt" rows="3" placeholder="Ask Sidehand… (Enter to send, Shift+Enter for a new line)"></textarea>
<div id="composer"></div></footer>`;

const byId = (id: string) => document.getElementById(id)!;
const prompt = byId("prompt") as HTMLTextAreaElement;
prompt.value = saved.draft ?? "";
const lastHtml = new WeakMap<Element, string>();

function patch(element: Element, html: string): void {
  if (lastHtml.get(element) === html) return;
  lastHtml.set(element, html);
  element.innerHTML = html;
}

function patchTranscript(htmls: string[]): void {
  const container = byId("transcript");
  htmls.forEach((html, i) => {
    let child = container.children[i];
    if (!child) child = container.appendChild(document.createElement("div"));
    patch(child, html);
  });
  while (container.children.length > htmls.length) container.lastElementChild!.remove();
}

let scheduled = false;
function draw(): void {
  scheduled = false;
  const transcript = view.current ? view.transcripts[view.current] : undefined;
  const atBottom = window.innerHeight + window.scrollY >= document.body.scrollHeight - 40;
  patch(byId("header"), render.header(view));
  patch(byId("banner"), render.banner(view));
  patch(byId("plan"), render.plan(transcript));
  patchTranscript((transcript?.items ?? []).map((item) => render.item(item, local)));
  const pending = view.permissions.filter((p) => p.request.sessionId === view.current);
  patch(byId("permissions"), render.permissions(pending));
  patch(byId("changes"), render.changes(view.current ? view.changes[view.current] : undefined));
  patch(byId("usage"), render.usage(transcript));
  patch(byId("composer"), render.composer(view));
  const fresh = pending.find((p) => !seenPermissions.has(p.id));
  for (const p of pending) seenPermissions.add(p.id);
  if (fresh) document.querySelector<HTMLElement>("#permissions [data-autofocus]")?.focus();
  if (atBottom || fresh) window.scrollTo(0, document.body.scrollHeight);
}

function schedule(): void {
  if (!scheduled) {
    scheduled = true;
    requestAnimationFrame(draw);
  }
}

function save(): void {
  vscode.setState({ draft: prompt.value, open: [...local.open] });
}

function send(): void {
  const text = prompt.value;
  if (!text.trim() || view.server.status !== "ready") return;
  vscode.postMessage({ type: "prompt", text });
  prompt.value = "";
  save();
}

window.addEventListener("message", (event: MessageEvent<Action>) => {
  apply(view, event.data);
  schedule();
});

document.addEventListener("click", (event) => {
  const target = (event.target as Element).closest<HTMLElement>("[data-action]");
  if (!target || target.tagName === "SELECT") return;
  const d = target.dataset;
  switch (d.action) {
    case "send":
      return send();
    case "showAll":
      local.whole.add(d.key ?? "");
      return schedule();
    case "permission":
      return vscode.postMessage({ type: "permission", id: d.id ?? "", optionId: d.option ?? null });
    case "attach":
      return vscode.postMessage({ type: "attach", what: d.what === "file" ? "file" : "selection" });
    case "detach":
      return vscode.postMessage({ type: "detach", index: Number(d.index) });
    case "openChange":
      return vscode.postMessage({ type: "openChange", path: d.path ?? "" });
    case "decideFile":
      return vscode.postMessage({ type: "decideFile", path: d.path ?? "", accept: d.accept === "1" });
    case "decideAll":
      return vscode.postMessage({ type: "decideAll", accept: d.accept === "1" });
    case "restore":
      return vscode.postMessage({ type: "restore", checkpointId: d.id ?? "" });
    case "run":
      return vscode.postMessage({ type: "run", command: d.command ?? "", args: JSON.parse(d.args ?? "[]") as unknown[] });
    case "newSession":
    case "cancel":
      return vscode.postMessage({ type: d.action });
  }
});

document.addEventListener("change", (event) => {
  const select = event.target as HTMLSelectElement;
  if (select.id === "session-select" && select.value) vscode.postMessage({ type: "openSession", sessionId: select.value });
});

// `toggle` does not bubble: listen in the capture phase to remember which tool calls are open.
document.addEventListener("toggle", (event) => {
  const details = event.target as HTMLDetailsElement;
  const key = details.dataset.key;
  if (!key) return;
  if (details.open) local.open.add(key);
  else local.open.delete(key);
  lastHtml.delete(details.parentElement!); // its HTML now differs from the cached string
  save();
}, true);

prompt.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    send();
  }
});
prompt.addEventListener("input", save);

vscode.postMessage({ type: "ready" });
