// What the panel shows, and the one function that changes it. The extension host keeps a ViewState
// and sends each Action to the webview, which applies the same function to its copy: the host's
// copy survives the panel being hidden (the webview is then destroyed) and is sent whole when the
// panel shows again. No I/O here, so it is unit-tested on its own.

import type {
  Checkpoint,
  PermissionRequest,
  PlanEntry,
  SessionInfo,
  SessionUpdate,
  SessionUpdateNotification,
  ToolContent,
  ToolStatus,
  UsageFigures,
} from "./protocol";

export interface ToolCall {
  id: string;
  status: ToolStatus;
  title: string;
  kind: string;
  tool: string;
  rawInput: Record<string, unknown>;
  locations: { path: string }[];
  awaitingApproval: boolean;
  content: ToolContent[];
}

export type Item =
  | { kind: "user"; text: string }
  | { kind: "agent"; text: string; streaming: boolean }
  | { kind: "tool"; call: ToolCall }
  | { kind: "checkpoint"; checkpoint: Checkpoint }
  | { kind: "notice"; level: "info" | "error"; text: string };

export interface Transcript {
  lastSeq: number; // updates at or below this were seen already (a replay): dropped
  items: Item[];
  plan: PlanEntry[];
  usage: { model: string; turn: UsageFigures; session: UsageFigures } | null;
  state: string;
}

export interface ProblemAction { label: string; command: string; args?: unknown[] }
// Why the server cannot serve: it does not start (the first four), it stopped, a setting is
// missing, or it runs but cannot reach the Docker engine its sandboxes need.
export type ProblemKind = "notFound" | "noPython" | "packageMissing" | "crashed" | "noModel" | "noEngine";
export interface Problem { kind: ProblemKind; title: string; detail: string; actions: ProblemAction[] }
export type ServerStatus = "starting" | "ready" | "failed" | "stopped";

export interface FileSummary { path: string; status: string; binary: boolean; hunks: number; conflict?: string }
export interface Attachment { type: "selection" | "file"; uri: string; label: string; text?: string; range?: unknown }
export interface PendingPermission { id: string; request: PermissionRequest }

export interface ViewState {
  server: { status: ServerStatus; problem: Problem | null };
  sessions: SessionInfo[];
  current: string | null;
  transcripts: Record<string, Transcript>;
  changes: Record<string, FileSummary[]>;
  permissions: PendingPermission[];
  attachments: Attachment[];
}

export type Action =
  | { type: "snapshot"; view: ViewState }
  | { type: "server"; status: ServerStatus; problem: Problem | null }
  | { type: "sandbox"; problem: Problem | null } // the engine's problem, or null once it answers
  | { type: "sessions"; sessions: SessionInfo[] }
  | { type: "select"; sessionId: string | null }
  | { type: "reset"; sessionId: string }
  | { type: "update"; notification: SessionUpdateNotification }
  | { type: "changes"; sessionId: string; files: FileSummary[] }
  | { type: "permission"; pending: PendingPermission }
  | { type: "permissionDone"; id: string }
  | { type: "checkpoints"; sessionId: string; checkpoints: Checkpoint[] }
  | { type: "notice"; sessionId: string; level: "info" | "error"; text: string }
  | { type: "attach"; attachment: Attachment }
  | { type: "detach"; index: number };

export function emptyView(): ViewState {
  return {
    server: { status: "starting", problem: null },
    sessions: [],
    current: null,
    transcripts: {},
    changes: {},
    permissions: [],
    attachments: [],
  };
}

export function emptyTranscript(): Transcript {
  return { lastSeq: -1, items: [], plan: [], usage: null, state: "idle" };
}

export const RUNNING_STATES = new Set(["running", "awaiting_approval"]);

export function transcriptOf(view: ViewState, sessionId: string): Transcript {
  return (view.transcripts[sessionId] ??= emptyTranscript());
}

/** Applies `action` to `view` in place (chunks arrive many times a second: no copying). */
export function apply(view: ViewState, action: Action): ViewState {
  switch (action.type) {
    case "snapshot":
      return Object.assign(view, action.view);
    case "server":
      view.server = { status: action.status, problem: action.problem };
      if (action.status !== "ready") view.permissions = []; // a stopped server asks nothing
      break;
    case "sandbox":
      // An engine that answers clears only the engine's problem (a missing model stays shown).
      if (action.problem) view.server.problem = action.problem;
      else if (view.server.problem?.kind === "noEngine") view.server.problem = null;
      break;
    case "sessions":
      view.sessions = action.sessions;
      break;
    case "select":
      view.current = action.sessionId;
      break;
    case "reset":
      view.transcripts[action.sessionId] = emptyTranscript();
      break;
    case "update":
      applyUpdate(transcriptOf(view, action.notification.sessionId), action.notification);
      break;
    case "changes":
      view.changes[action.sessionId] = action.files;
      break;
    case "permission":
      view.permissions = [...view.permissions.filter((p) => p.id !== action.pending.id), action.pending];
      break;
    case "permissionDone":
      view.permissions = view.permissions.filter((p) => p.id !== action.id);
      break;
    case "checkpoints":
      for (const checkpoint of action.checkpoints) addCheckpoint(transcriptOf(view, action.sessionId), checkpoint);
      break;
    case "notice":
      transcriptOf(view, action.sessionId).items.push({ kind: "notice", level: action.level, text: action.text });
      break;
    case "attach":
      if (!view.attachments.some((a) => a.label === action.attachment.label)) view.attachments.push(action.attachment);
      break;
    case "detach":
      view.attachments.splice(action.index, 1);
      break;
  }
  return view;
}

const STATUS_RANK: Record<ToolStatus, number> = { pending: 0, in_progress: 1, completed: 2, failed: 2 };

export function applyUpdate(transcript: Transcript, notification: SessionUpdateNotification): void {
  if (notification.seq <= transcript.lastSeq) return;
  transcript.lastSeq = notification.seq;
  const update: SessionUpdate = notification.update;
  const items = transcript.items;
  switch (update.sessionUpdate) {
    case "user_message":
      items.push({ kind: "user", text: update.content.text });
      break;
    case "agent_message_chunk": {
      const open = streamingMessage(items);
      if (open) open.text += update.content.text;
      else items.push({ kind: "agent", text: update.content.text, streaming: true });
      break;
    }
    case "agent_message": {
      // The whole message: it replaces what was streamed of it (a replay has no chunks).
      const open = streamingMessage(items);
      if (open) Object.assign(open, { text: update.content.text, streaming: false });
      else items.push({ kind: "agent", text: update.content.text, streaming: false });
      break;
    }
    case "tool_call":
      mergeToolCall(items, update);
      break;
    case "plan":
      transcript.plan = update.entries;
      break;
    case "usage":
      transcript.usage = { model: update.model, turn: update.turn, session: update.session };
      break;
    case "state":
      transcript.state = update.state;
      if ((update.state === "error" || update.state === "stuck") && update.reason)
        items.push({ kind: "notice", level: "error", text: update.reason });
      break;
    case "turn_end":
      transcript.state = "idle";
      closeStreaming(items);
      if (update.stopReason !== "end_turn")
        items.push({ kind: "notice", level: update.stopReason === "cancelled" ? "info" : "error", text: stopText(update.stopReason, update.message) });
      break;
    case "checkpoint":
      addCheckpoint(transcript, update);
      break;
  }
}

function stopText(reason: string, message: string | null | undefined): string {
  const what: Record<string, string> = {
    cancelled: "Cancelled.",
    max_iterations: "Stopped: the turn reached its step limit.",
    budget: "Stopped: the task's budget is spent.",
    max_tokens: "Stopped: the task used its tokens.",
    timeout: "Stopped: the task ran out of time.",
    stuck: "Stopped: the agent was repeating itself.",
    error: "The turn failed.",
  };
  const head = what[reason] ?? `Stopped (${reason}).`;
  return message && reason !== "cancelled" ? `${head} ${message}` : head;
}

function streamingMessage(items: Item[]): Extract<Item, { kind: "agent" }> | undefined {
  for (let i = items.length - 1; i >= 0; i--) {
    const item = items[i]!;
    if (item.kind === "agent" && item.streaming) return item;
    if (item.kind === "user") return undefined; // never reach into an earlier turn
  }
  return undefined;
}

function closeStreaming(items: Item[]): void {
  for (const item of items) if (item.kind === "agent") item.streaming = false;
}

function mergeToolCall(items: Item[], update: Extract<SessionUpdate, { sessionUpdate: "tool_call" }>): void {
  const existing = items.find((i): i is Extract<Item, { kind: "tool" }> => i.kind === "tool" && i.call.id === update.toolCallId);
  if (!existing) {
    items.push({
      kind: "tool",
      call: {
        id: update.toolCallId,
        status: update.status,
        title: update.title ?? update.tool ?? "tool",
        kind: update.kind ?? "other",
        tool: update.tool ?? "",
        rawInput: update.rawInput ?? {},
        locations: update.locations ?? [],
        awaitingApproval: update.awaitingApproval === true && update.status === "pending",
        content: update.content ?? [],
      },
    });
    return;
  }
  const call = existing.call;
  // A late or replayed update never moves a call back (completed stays completed).
  if (STATUS_RANK[update.status] >= STATUS_RANK[call.status]) call.status = update.status;
  if (update.title !== undefined) call.title = update.title;
  if (update.kind !== undefined) call.kind = update.kind;
  if (update.tool !== undefined) call.tool = update.tool;
  if (update.rawInput !== undefined) call.rawInput = update.rawInput;
  if (update.locations !== undefined) call.locations = update.locations;
  if (update.content !== undefined) call.content = update.content;
  call.awaitingApproval = call.status === "pending" && (update.awaitingApproval ?? call.awaitingApproval);
}

function addCheckpoint(transcript: Transcript, checkpoint: Checkpoint): void {
  const seen = transcript.items.some((i) => i.kind === "checkpoint" && i.checkpoint.checkpointId === checkpoint.checkpointId);
  if (seen) return;
  const { checkpointId, label, toolCallId, timestamp } = checkpoint;
  const item: Item = { kind: "checkpoint", checkpoint: { checkpointId, label, toolCallId, timestamp } };
  // Listed checkpoints arrive after a replay: each goes right after the tool call it follows.
  const after = transcript.items.findIndex((i) => i.kind === "tool" && i.call.id === toolCallId);
  if (after >= 0) transcript.items.splice(after + 1, 0, item);
  else transcript.items.push(item);
}

export function isRunning(transcript: Transcript | undefined): boolean {
  return transcript !== undefined && RUNNING_STATES.has(transcript.state);
}
