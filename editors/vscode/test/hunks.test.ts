// Hunks on the two sides of a diff, and change paths that must stay inside the workspace.
import assert from "node:assert/strict";
import { test } from "node:test";
import { hunkAt, hunkSpan, pathInside } from "../src/shared/hunks";
import type { Hunk } from "../src/shared/protocol";

const hunk = (index: number, oldStart: number, oldLines: number, newStart: number, newLines: number): Hunk =>
  ({ index, header: `@@ -${oldStart},${oldLines} +${newStart},${newLines} @@`, oldStart, oldLines, newStart, newLines });

test("spans are zero-based and end-exclusive", () => {
  assert.deepEqual(hunkSpan(hunk(0, 1, 2, 1, 3), "old"), { start: 0, end: 2 });
  assert.deepEqual(hunkSpan(hunk(0, 1, 2, 1, 3), "new"), { start: 0, end: 3 });
});

test("an empty side sits after the line its header names", () => {
  // "-3,0 +4,2": two lines inserted after old line 3; "-5,2 +6,0": two lines deleted after new line 6.
  assert.deepEqual(hunkSpan(hunk(0, 3, 0, 4, 2), "old"), { start: 3, end: 3 });
  assert.deepEqual(hunkSpan(hunk(0, 5, 2, 6, 0), "new"), { start: 6, end: 6 });
  assert.deepEqual(hunkSpan(hunk(0, 0, 0, 1, 4), "old"), { start: 0, end: 0 }); // a new file
});

test("the hunk under the cursor, else the nearest one, on either side", () => {
  const hunks = [hunk(0, 2, 1, 2, 1), hunk(1, 20, 3, 20, 1)];
  assert.equal(hunkAt(hunks, 1, "new")?.index, 0);
  assert.equal(hunkAt(hunks, 19, "new")?.index, 1);
  assert.equal(hunkAt(hunks, 21, "old")?.index, 1);
  assert.equal(hunkAt(hunks, 5, "new")?.index, 0);
  assert.equal(hunkAt(hunks, 15, "new")?.index, 1);
  assert.equal(hunkAt([], 3, "new"), undefined);
});

test("a cursor on the line after a deletion means the deletion", () => {
  const hunks = [hunk(0, 2, 1, 2, 1), hunk(1, 10, 2, 9, 0)];
  assert.equal(hunkAt(hunks, 9, "new")?.index, 1);
});

test("change paths resolve inside the workspace, hostile ones not at all", () => {
  assert.equal(pathInside("/ws", "src/app.py"), "/ws/src/app.py");
  assert.equal(pathInside("/ws/", "./a b/ünï cødé.py"), "/ws/a b/ünï cødé.py");
  assert.equal(pathInside("/ws", "dir\\win.txt"), "/ws/dir/win.txt");
  for (const hostile of ["../etc/passwd", "a/../../x", "a/..", "/etc/passwd", "C:/x", "", ".", "a\0b"])
    assert.equal(pathInside("/ws", hostile), undefined, hostile);
});
