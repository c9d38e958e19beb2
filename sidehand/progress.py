"""What `sidehand run` shows on stderr while the agent works (stdout stays clean for scripts)."""

from __future__ import annotations

import sys
from typing import TextIO

from core.events import Event
from core.messages import Usage

PLAN_MARKS = {"completed": "✓", "in_progress": "▶", "pending": "☐"}


class ProgressPrinter:
    def __init__(self, stream: TextIO = sys.stderr, verbose: bool = False) -> None:
        self.stream = stream
        self.verbose = verbose
        self._streaming = False

    def _line(self, text: str) -> None:
        if self._streaming:
            self.stream.write("\n")
            self._streaming = False
        self.stream.write(text + "\n")
        self.stream.flush()

    def status(self, text: str) -> None:
        self._line(f"… {text}")

    def usage(self, now: Usage, before: Usage) -> None:
        """The task's tokens and cost (what the session spent since `before`)."""
        prompt = now.prompt_tokens - before.prompt_tokens
        completion = now.completion_tokens - before.completion_tokens
        cost = now.cost - before.cost
        self._line(
            f"tokens: {prompt} prompt + {completion} completion = {prompt + completion}; cost: ${cost:.4f}"
        )

    def __call__(self, event: Event) -> None:
        match event.kind:
            case "agent_message_chunk":
                self.stream.write(event.text)
                self.stream.flush()
                self._streaming = True
            case "agent_message":
                if not self._streaming:
                    self._line(event.text)
                self._streaming = False
                self.stream.write("\n")
            case "tool_call":
                self._line(f"▸ {event.tool}: {event.title or event.arguments[:100]}")
            case "tool_result":
                lines = event.output.strip().splitlines() or [""]
                mark = "✗" if event.error else "✓"
                brief = lines[0][:160] + (f" … {lines[-1][:80]}" if len(lines) > 1 else "")
                body = event.output if self.verbose else brief
                self._line(f"  {mark} {body}")
            case "approval_requested":
                self._line(
                    f"? approval needed ({event.risk} risk: {event.reason}) for {event.tool} {event.arguments}"
                )
            case "plan_updated":
                done = sum(1 for e in event.entries if e.status == "completed")
                lines = [f"  {PLAN_MARKS[e.status]} {e.content}" for e in event.entries]
                self._line("\n".join([f"≡ plan ({done}/{len(event.entries)} done)", *lines]))
            case "notice":
                self._line(f"! {event.level}: {event.message}")
            case "nudge":
                self._line(f"! nudged the agent: {event.text}")
            case "skill_injected":
                why = "trigger word" if event.reason == "trigger" else "rules for"
                self._line(f"◆ {event.path} given to the agent ({why} {event.trigger!r})")
            case "condensation":
                self._line(
                    f"◇ history condensed ({event.strategy}): ~{event.tokens_before} → ~{event.tokens_after} tokens"
                )
            case "turn_ended":
                changes = ", ".join(event.changes) or "no changes"
                self._line(f"■ {event.stop_reason}: {event.message[:300]}\n  changes: {changes}")
            case _:
                pass
