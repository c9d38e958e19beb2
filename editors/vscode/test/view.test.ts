// The panel's state machine, fed synthetic `sidehand/session/update` notifications.
import assert from "node:assert/strict";
import { test } from "node:test";
import type { SessionUpdate } from "../src/shared/protocol";
import { problem, sandboxProblem } from "../src/launch";
import { apply, emptyView, isRunning, type Item, type ToolCall, type ViewState } from "../src/shared/view";

const S = "session-1";

function feed(view: ViewState, updates: SessionUpdate[], firstSeq = 0): ViewState {
  updates.forEach((update, i) => apply(view, { type: "update", notification: { sessionId: S, seq: firstSeq + i, update } }));
  return view;
}

const items = (view: ViewState): Item[] => view.transcripts[S]?.items ?? [];
function toolCall(item: Item | undefined): ToolCall {
  assert.ok(item?.kind === "tool", `not a tool call: ${JSON.stringify(item)}`);
  return item.call;
}
const text = (t: string) => ({ type: "text" as const, text: t });

test("streamed chunks build one message that the whole message then replaces", () => {
  const view = feed(emptyView(), [
    { sessionUpdate: "user_message", content: text("fix it") },
    { sessionUpdate: "agent_message_chunk", content: text("Look") },
    { sessionUpdate: "agent_message_chunk", content: text("ing…") },
  ]);
  assert.deepEqual(items(view)[1], { kind: "agent", text: "Looking…", streaming: true });
  feed(view, [{ sessionUpdate: "agent_message", content: text("Looking at it.") }], 3);
  assert.equal(items(view).length, 2);
  assert.deepEqual(items(view)[1], { kind: "agent", text: "Looking at it.", streaming: false });
});

test("chunks of a new turn never extend the previous turn's message", () => {
  const view = feed(emptyView(), [
    { sessionUpdate: "user_message", content: text("one") },
    { sessionUpdate: "agent_message_chunk", content: text("A") },
    { sessionUpdate: "user_message", content: text("two") },
    { sessionUpdate: "agent_message_chunk", content: text("B") },
  ]);
  assert.deepEqual(items(view).map((i) => (i.kind === "agent" ? i.text : i.kind)), ["user", "A", "user", "B"]);
});

test("tool call updates merge by id; a late or replayed status never moves a call back", () => {
  const view = feed(emptyView(), [
    { sessionUpdate: "tool_call", toolCallId: "c1", status: "pending", title: "ls", tool: "bash", kind: "execute", rawInput: { command: "ls" } },
    { sessionUpdate: "tool_call", toolCallId: "c1", status: "pending", awaitingApproval: true },
    { sessionUpdate: "tool_call", toolCallId: "c1", status: "in_progress" },
    { sessionUpdate: "tool_call", toolCallId: "c1", status: "completed", content: [{ type: "output", text: "a.py\n", exitCode: 0 }] },
    { sessionUpdate: "tool_call", toolCallId: "c1", status: "in_progress" }, // out of order
  ]);
  assert.equal(items(view).length, 1);
  const call = toolCall(items(view)[0]);
  assert.equal(call.status, "completed");
  assert.equal(call.title, "ls");
  assert.equal(call.awaitingApproval, false);
  assert.deepEqual(call.content, [{ type: "output", text: "a.py\n", exitCode: 0 }]);
});

test("a call awaiting approval says so until it runs", () => {
  const view = feed(emptyView(), [
    { sessionUpdate: "tool_call", toolCallId: "c1", status: "pending", title: "rm" },
    { sessionUpdate: "tool_call", toolCallId: "c1", status: "pending", awaitingApproval: true },
  ]);
  const ask = toolCall(items(view)[0]);
  assert.ok(ask.awaitingApproval);
  feed(view, [{ sessionUpdate: "tool_call", toolCallId: "c1", status: "in_progress" }], 2);
  assert.ok(!ask.awaitingApproval);
});

test("updates already seen (a replay, a duplicate) are dropped by sequence number", () => {
  const view = feed(emptyView(), [{ sessionUpdate: "user_message", content: text("hi") }]);
  feed(view, [{ sessionUpdate: "user_message", content: text("hi") }]); // seq 0 again
  assert.equal(items(view).length, 1);
  apply(view, { type: "reset", sessionId: S }); // before a load: the replay rebuilds it
  feed(view, [{ sessionUpdate: "user_message", content: text("hi") }], 5);
  assert.equal(items(view).length, 1);
});

test("plan, usage and running state", () => {
  const view = feed(emptyView(), [
    { sessionUpdate: "state", state: "running" },
    { sessionUpdate: "plan", entries: [{ content: "Read the code", status: "completed", priority: "high" }, { content: "Fix", status: "in_progress", priority: "medium" }] },
    { sessionUpdate: "usage", model: "m", call: { promptTokens: 1, completionTokens: 1, cost: 0 }, turn: { promptTokens: 5, completionTokens: 2, cost: 0.1 }, session: { promptTokens: 9, completionTokens: 3, cost: 0.2 } },
  ]);
  const transcript = view.transcripts[S]!;
  assert.ok(isRunning(transcript));
  assert.deepEqual(transcript.plan.map((e) => e.status), ["completed", "in_progress"]);
  assert.equal(transcript.usage?.session.promptTokens, 9);
  feed(view, [{ sessionUpdate: "turn_end", stopReason: "end_turn", message: "done", changes: [] }], 3);
  assert.ok(!isRunning(transcript));
  assert.equal(transcript.items.length, 0); // a normal end adds nothing to read
});

test("a turn that did not end normally leaves a notice; an error state says why", () => {
  const view = feed(emptyView(), [
    { sessionUpdate: "state", state: "error", reason: "no Docker engine is reachable" },
    { sessionUpdate: "turn_end", stopReason: "error", message: "no Docker engine is reachable" },
    { sessionUpdate: "turn_end", stopReason: "cancelled" },
  ]);
  assert.deepEqual(items(view), [
    { kind: "notice", level: "error", text: "no Docker engine is reachable" },
    { kind: "notice", level: "error", text: "The turn failed. no Docker engine is reachable" },
    { kind: "notice", level: "info", text: "Cancelled." },
  ]);
});

test("checkpoints: deduplicated, and listed ones placed after their tool call", () => {
  const view = feed(emptyView(), [
    { sessionUpdate: "tool_call", toolCallId: "c1", status: "completed", title: "edit" },
    { sessionUpdate: "tool_call", toolCallId: "c2", status: "completed", title: "run" },
    { sessionUpdate: "checkpoint", checkpointId: "k2", label: "after run", toolCallId: "c2", timestamp: 1 },
  ]);
  apply(view, { type: "checkpoints", sessionId: S, checkpoints: [
    { checkpointId: "k1", label: "after edit", toolCallId: "c1", timestamp: 0 },
    { checkpointId: "k2", label: "after run", toolCallId: "c2", timestamp: 1 },
  ] });
  assert.deepEqual(items(view).map((i) => (i.kind === "checkpoint" ? i.checkpoint.checkpointId : i.kind === "tool" ? i.call.id : i.kind)), ["c1", "k1", "c2", "k2"]);
});

test("permission prompts come and go by id; a stopped server leaves none", () => {
  const view = emptyView();
  const request = { sessionId: S, toolCall: { sessionUpdate: "tool_call" as const, toolCallId: "c1", status: "pending" as const }, risk: "high", reason: "r", options: [] };
  apply(view, { type: "permission", pending: { id: "p1", request } });
  apply(view, { type: "permission", pending: { id: "p1", request } });
  apply(view, { type: "permission", pending: { id: "p2", request } });
  assert.equal(view.permissions.length, 2);
  apply(view, { type: "permissionDone", id: "p1" });
  assert.deepEqual(view.permissions.map((p) => p.id), ["p2"]);
  apply(view, { type: "server", status: "failed", problem: { kind: "crashed", title: "t", detail: "d", actions: [] } });
  assert.equal(view.permissions.length, 0);
});

test("a snapshot replaces the page's state whole (the panel shown again)", () => {
  const host = feed(emptyView(), [{ sessionUpdate: "user_message", content: text("kept") }]);
  apply(host, { type: "select", sessionId: S });
  const page = apply(emptyView(), { type: "snapshot", view: JSON.parse(JSON.stringify(host)) as ViewState });
  assert.deepEqual(page, host);
});

const UNREACHABLE = "no Docker engine is reachable ([Errno 2] cannot connect to /tmp/missing.sock: No such file or directory)";

test("an unreachable engine is a problem while the server runs, cleared once the engine answers", () => {
  const view = emptyView();
  apply(view, { type: "server", status: "ready", problem: null });
  apply(view, { type: "sandbox", problem: sandboxProblem({ state: "unavailable", message: UNREACHABLE }) });
  assert.equal(view.server.status, "ready");
  const shown = view.server.problem;
  assert.ok(shown);
  assert.equal(shown.kind, "noEngine");
  assert.match(shown.detail, /cannot connect to \/tmp\/missing\.sock/);
  apply(view, { type: "sandbox", problem: sandboxProblem({ state: "unavailable", message: UNREACHABLE }) }); // Retry, still down
  assert.equal(view.server.problem?.kind, "noEngine");
  apply(view, { type: "sandbox", problem: sandboxProblem({ state: "ready", message: null }) });
  assert.equal(view.server.problem, null);
});

test("an engine that answers leaves another problem shown; a restart drops the engine's until it is checked again", () => {
  const view = emptyView();
  apply(view, { type: "server", status: "ready", problem: problem("noModel", "no model configured") });
  apply(view, { type: "sandbox", problem: sandboxProblem({ state: "ready", message: null }) });
  assert.equal(view.server.problem?.kind, "noModel");
  apply(view, { type: "sandbox", problem: sandboxProblem({ state: "unavailable", message: UNREACHABLE }) });
  apply(view, { type: "server", status: "starting", problem: null });
  assert.equal(view.server.problem, null);
});
