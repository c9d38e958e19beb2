// The `sidehand/*` wire shapes the extension reads (docs/protocol.md is the reference). Only the
// fields the panel uses are typed; the server may send more.

export interface TextContent { type: "text"; text: string }
export interface DiffContent { type: "diff"; path: string; unifiedDiff: string; oldText?: string; newText?: string }
export interface OutputContent { type: "output"; text: string; exitCode: number | null; timedOut?: boolean; truncated?: boolean }
export type ToolContent = TextContent | DiffContent | OutputContent;

export type ToolStatus = "pending" | "in_progress" | "completed" | "failed";

export interface PlanEntry { content: string; status: "pending" | "in_progress" | "completed"; priority: "high" | "medium" | "low" }
export interface UsageFigures { promptTokens: number; completionTokens: number; cost: number | null }

export type SessionUpdate =
  | { sessionUpdate: "user_message" | "agent_message" | "agent_message_chunk"; content: TextContent }
  | {
      sessionUpdate: "tool_call";
      toolCallId: string;
      status: ToolStatus;
      kind?: string;
      title?: string;
      tool?: string;
      rawInput?: Record<string, unknown>;
      locations?: { path: string }[];
      awaitingApproval?: boolean;
      content?: ToolContent[];
    }
  | { sessionUpdate: "plan"; entries: PlanEntry[] }
  | { sessionUpdate: "usage"; model: string; call: UsageFigures; turn: UsageFigures; session: UsageFigures }
  | { sessionUpdate: "state"; state: string; reason?: string | null }
  | { sessionUpdate: "turn_end"; stopReason: string; message?: string | null; changes?: string[] }
  | { sessionUpdate: "checkpoint"; checkpointId: string; label: string; toolCallId: string | null; timestamp: number };

export interface SessionUpdateNotification { sessionId: string; seq: number; update: SessionUpdate }

export interface SessionInfo {
  sessionId: string;
  cwd: string;
  title: string | null;
  created: number;
  updated: number;
  model: string | null;
  status: string;
  live: boolean;
}

export interface PermissionOption { optionId: string; name: string; kind: string }
export interface PermissionRequest {
  sessionId: string;
  toolCall: Extract<SessionUpdate, { sessionUpdate: "tool_call" }>;
  risk: string;
  reason: string;
  options: PermissionOption[];
}

export interface Hunk { index: number; header: string; oldStart: number; oldLines: number; newStart: number; newLines: number }
export interface ChangedFile {
  path: string;
  status: "added" | "modified" | "deleted";
  binary: boolean;
  diff: string;
  hunks: Hunk[];
  newText: string | null;
}

export interface Checkpoint { checkpointId: string; label: string; toolCallId: string | null; timestamp: number }

// `sidehand/sandbox/status` (notification) and the answer to `sidehand/sandbox/check`.
export interface SandboxStatus { state: "ready" | "unavailable"; message: string | null }

// JSON-RPC error codes the extension reacts to (agent_lsp/methods.py).
export const ErrorCodes = {
  methodNotFound: -32601,
  configuration: -32003,
  conflict: -32004,
} as const;
