// The panel's HTML: agent text is markdown with nothing executable in it; huge outputs are cut.
import assert from "node:assert/strict";
import { test } from "node:test";
import type { ToolCall } from "../src/shared/view";
import { emptyView } from "../src/shared/view";
import * as render from "../webview/render";

const local = (): render.LocalState => ({ open: new Set(), whole: new Set() });

test("markdown renders, code is highlighted, raw HTML and script links are not", () => {
  const html = render.item({ kind: "agent", streaming: false, text: "**Done**\n\n```python\ndef f():\n    return 1\n```\n\n<script>alert(1)</script><img src=x onerror=alert(2)>\n\n[x](javascript:alert(3))" }, local());
  assert.match(html, /<strong>Done<\/strong>/);
  assert.match(html, /<span class="hljs-keyword">def<\/span>/);
  assert.doesNotMatch(html, /<script|<img|href="javascript/i);
  assert.match(html, /&lt;script&gt;alert\(1\)&lt;\/script&gt;/);
});

test("text from the server is escaped everywhere else", () => {
  const evil = `"><img src=x onerror=alert(1)>`;
  const view = emptyView();
  view.sessions = [{ sessionId: evil, cwd: "/", title: evil, created: 0, updated: 0, model: null, status: "idle", live: true }];
  view.server.problem = { kind: "crashed", title: evil, detail: evil, actions: [{ label: evil, command: evil }] };
  const pieces = [
    render.header(view),
    render.banner(view),
    render.item({ kind: "user", text: evil }, local()),
    render.item({ kind: "notice", level: "error", text: evil }, local()),
    render.changes([{ path: evil, status: "modified", binary: false, hunks: 1 }]),
  ];
  for (const html of pieces) assert.doesNotMatch(html, /<img/, html);
});

const call = (text: string): ToolCall => ({ id: "c1", status: "completed", title: "cat big", kind: "execute", tool: "bash", rawInput: {}, locations: [], awaitingApproval: false, content: [{ type: "output", text, exitCode: 0 }] });

test("a huge tool output is collapsed and cut until Show all", () => {
  const big = "x".repeat(render.OUTPUT_PREVIEW * 10);
  const shown = render.item({ kind: "tool", call: call(big) }, local());
  assert.doesNotMatch(shown, /<details[^>]* open/);
  assert.ok(shown.length < render.OUTPUT_PREVIEW * 2);
  assert.match(shown, /36,000 more characters/);
  const whole = local();
  whole.whole.add("tool:c1:0");
  whole.open.add("tool:c1");
  const all = render.item({ kind: "tool", call: call(big) }, whole);
  assert.ok(all.includes(big));
  assert.match(all, /<details[^>]* open/);
});

test("a plan shows its entries with their status", () => {
  const transcript = { lastSeq: 0, items: [], usage: null, state: "running", plan: [{ content: "Write <tests>", status: "completed" as const, priority: "high" as const }] };
  const html = render.plan(transcript);
  assert.match(html, /plan-completed/);
  assert.match(html, /Write &#60;tests&#62;/);
});

test("an approval shows the command to run, or an edit's arguments, escaped", () => {
  const ask = (tool: string, rawInput: Record<string, unknown>) =>
    render.permissions([{ id: "p1", request: { sessionId: "s", risk: "high", reason: "deletes files", options: [
      { optionId: "allow_once", name: "Allow once", kind: "allow_once" },
      { optionId: "reject", name: "Reject", kind: "reject_once" },
    ], toolCall: { sessionUpdate: "tool_call", toolCallId: "c1", status: "pending", tool, title: `${tool} <b>`, rawInput } } }]);
  const bash = ask("bash", { command: "rm -rf build </pre><script>x()</script>" });
  assert.match(bash, /rm<\/span> -rf build &lt;\/pre&gt;/);
  assert.doesNotMatch(bash, /<script|<b>|<\/pre><script/);
  assert.match(bash, /data-option="allow_once" data-autofocus/); // the first choice takes the focus
  assert.match(bash, /data-option="reject" class="secondary"/);
  const edit = ask("editor", { command: "str_replace", path: "a.py", old_str: "a - b", new_str: "a + b" });
  assert.match(edit, /old_str/);
  assert.match(edit, /a \+ b/);
});

test("a checkpoint offers Restore; attachments can be removed", () => {
  const html = render.item({ kind: "checkpoint", checkpoint: { checkpointId: "k<1>", label: "after edit", toolCallId: "c1", timestamp: 0 } }, local());
  assert.match(html, /data-action="restore" data-id="k&#60;1&#62;">Restore</);
  const view = emptyView();
  view.server.status = "ready";
  view.attachments = [{ type: "selection", uri: "file:///ws/a.py", label: "a.py:1-3", text: "x" }];
  const composer = render.composer(view);
  assert.match(composer, /a\.py:1-3<button[^>]*data-action="detach" data-index="0"/);
  assert.match(composer, /data-action="send">Send/);
});
