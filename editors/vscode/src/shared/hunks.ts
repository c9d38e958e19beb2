// Where a change's hunks sit in the two sides of a diff editor, and which file a change path
// names. Pure, so the mapping is unit-tested without VS Code.

import type { Hunk } from "./protocol";

/** Zero-based, end-exclusive line span of a hunk on one side. A side with no lines (a pure
 *  insertion or deletion) is an empty span at the line the other side's lines go before. */
export interface LineSpan { start: number; end: number }

export function hunkSpan(hunk: Hunk, side: "old" | "new"): LineSpan {
  const first = side === "old" ? hunk.oldStart : hunk.newStart;
  const count = side === "old" ? hunk.oldLines : hunk.newLines;
  // A unified diff numbers an empty side by the line *before* it ("-3,0"): it starts after line 3.
  const start = count === 0 ? first : first - 1;
  return { start, end: start + count };
}

/** The hunk a cursor on `line` (zero-based) of `side` means: the one whose span holds it, else
 *  the one whose span is nearest (a cursor on the line after a deletion means that deletion). */
export function hunkAt(hunks: readonly Hunk[], line: number, side: "old" | "new"): Hunk | undefined {
  let best: Hunk | undefined;
  let bestDistance = Infinity;
  for (const hunk of hunks) {
    const span = hunkSpan(hunk, side);
    const distance = line < span.start ? span.start - line : line >= span.end ? line - Math.max(span.end - 1, span.start) : 0;
    if (distance < bestDistance) {
      best = hunk;
      bestDistance = distance;
    }
  }
  return best;
}

/** The absolute path a change path names inside `root`, or undefined when it would leave it
 *  (`..` segments, an absolute path, a NUL). `root` and the result use '/' separators. */
export function pathInside(root: string, relative: string): string | undefined {
  if (relative === "" || relative.includes("\0") || relative.startsWith("/") || /^[A-Za-z]:/.test(relative)) return undefined;
  const parts: string[] = [];
  for (const part of relative.replace(/\\/g, "/").split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") return undefined; // never resolved, even when it would stay inside
    parts.push(part);
  }
  if (parts.length === 0) return undefined;
  return `${root.replace(/\/+$/, "")}/${parts.join("/")}`;
}
