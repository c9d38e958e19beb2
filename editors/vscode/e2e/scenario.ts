// End to end in a real VS Code: the packaged extension installed into code-server, driven in
// headless Chromium with playwright-core, against the real `sidehand lsp` (a venv's console
// script), the real Docker sandbox and the scripted model server over HTTP.
//
// Run by scripts/test-vscode, which installs everything and passes the paths in the environment.
// Prints "N passed, N failed"; results.json and screenshots go to $ARTIFACTS.

import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { chromium, type Frame, type Page } from "playwright-core";

const env = (name: string): string => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set (run scripts/test-vscode)`);
  return value;
};
const CODE_SERVER = env("CODE_SERVER");
const CHROMIUM = env("CHROMIUM");
const SIDEHAND = env("SIDEHAND"); // the venv's `sidehand` console script
const PYTHON = env("SIDEHAND_PYTHON"); // the same venv's python, for the scripted model server
const VSIX = env("VSIX");
const ARTIFACTS = env("ARTIFACTS");
const STEP_TIMEOUT = 90_000; // the first prompt starts a Docker sandbox and imports litellm

const ORIGINAL = ["def add(a, b):", "    return a - b", "", "", ...Array.from({ length: 10 }, (_, i) => `# note ${i + 1}`), "", "", "def div(a, b):", "    return a * b", ""].join("\n");
const EXPECTED = ORIGINAL.replace("return a - b", "return a + b"); // hunk 0 accepted, hunk 1 rejected
const FINAL_TEXT = "Fixed `add` and `div` in calc.py:\n\n```python\ndef add(a, b):\n    return a + b\n```\n\n<img src=x onerror=alert(1)> stays text.";
const SCRIPT = [
  { text: "I'll fix both functions in calc.py.", chunk_delay: 0.05, tool_calls: [{ name: "editor", arguments: { command: "str_replace", path: "/workspace/calc.py", old_str: "return a - b", new_str: "return a + b" } }] },
  { tool_calls: [{ name: "editor", arguments: { command: "str_replace", path: "/workspace/calc.py", old_str: "return a * b", new_str: "return a / b" } }] },
  { tool_calls: [{ name: "bash", arguments: { command: "grep -n return calc.py" } }] },
  { text: FINAL_TEXT },
  { text: "`add` returns the sum of its two arguments." }, // the code action's session
  { text: "This reply comes too late.", delay: 30 }, // cancelled before it arrives
];

const children: ChildProcess[] = [];
const results: { step: string; ok: boolean; ms: number; error?: string }[] = [];
const figures: Record<string, number | string> = {};
let failure: (() => Promise<void>) | undefined; // saves what the page showed when a step failed

function start(command: string, args: string[], options: { env?: NodeJS.ProcessEnv; log: string }): ChildProcess {
  const out = fs.openSync(path.join(ARTIFACTS, options.log), "w");
  // Its own process group: stopping it stops what it started (the extension host, the server).
  const child = spawn(command, args, { env: options.env ?? process.env, stdio: ["ignore", "pipe", out], detached: true });
  children.push(child);
  return child;
}

/** Stops what this scenario started, newest first: SIGTERM to the process itself (code-server then
 *  shuts its extension host down, which stops the server and its sandboxes), then whatever is left
 *  of its process group. */
async function stopAll(): Promise<void> {
  for (const child of children.splice(0).reverse()) {
    if (child.pid === undefined) continue;
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGTERM");
      await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 10_000))]);
    }
    try {
      process.kill(-child.pid, "SIGKILL");
    } catch {
      // the group is gone already
    }
  }
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer().listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => (typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port"))));
    });
  });
}

async function until<T>(what: string, probe: () => Promise<T | undefined | false> | T | undefined | false, timeout = STEP_TIMEOUT): Promise<T> {
  const deadline = Date.now() + timeout;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function step(name: string, run: () => Promise<void>): Promise<void> {
  const began = Date.now();
  try {
    await run();
    results.push({ step: name, ok: true, ms: Date.now() - began });
    console.log(`ok   ${name} (${Date.now() - began} ms)`);
  } catch (error) {
    results.push({ step: name, ok: false, ms: Date.now() - began, error: String(error) });
    await failure?.();
    console.log(`FAIL ${name}: ${String(error)}`);
    throw error;
  }
}

/** The panel's page: the innermost frame of the webview that holds our #prompt. */
async function panelFrame(page: Page): Promise<Frame> {
  return until("the Sidehand panel", async () => {
    for (const frame of page.frames()) if (await frame.locator("#prompt").count().catch(() => 0)) return frame;
    return undefined;
  });
}

async function palette(page: Page, command: string): Promise<void> {
  await page.keyboard.press("F1");
  const input = page.locator(".quick-input-widget input");
  await input.waitFor();
  await input.fill(`>${command}`);
  await page.locator(".quick-input-list .monaco-list-row", { hasText: command }).first().waitFor();
  await page.keyboard.press("Enter");
}

function writeSettings(file: string, settings: Record<string, unknown>): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, JSON.stringify(settings, null, 2));
}

async function main(): Promise<void> {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "sidehand-vscode-"));
  const home = path.join(root, "home");
  const workspace = path.join(root, "workspace");
  fs.mkdirSync(workspace, { recursive: true });
  fs.writeFileSync(path.join(workspace, "calc.py"), ORIGINAL);
  const scriptFile = path.join(root, "script.json");
  fs.writeFileSync(scriptFile, JSON.stringify(SCRIPT));
  // Nothing from the real home, and no SIDEHAND_* from the caller: the settings below are the only ones.
  const cleanEnv: NodeJS.ProcessEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("SIDEHAND_")));
  Object.assign(cleanEnv, { HOME: home, XDG_CONFIG_HOME: path.join(home, ".config"), XDG_DATA_HOME: path.join(home, ".local/share"), XDG_CACHE_HOME: path.join(home, ".cache") });
  // The server starts with no engine at DOCKER_HOST: a socket path that appears (a link to the
  // real engine's socket) once the panel has said so.
  const engine = process.env.DOCKER_HOST ?? "unix:///var/run/docker.sock";
  if (!engine.startsWith("unix://")) throw new Error(`the scenario links to a unix socket engine, not ${engine}`);
  const engineLink = path.join(root, "docker.sock");
  cleanEnv.DOCKER_HOST = `unix://${engineLink}`;

  const model = start(PYTHON, ["-m", "core.testing.scripted_server", scriptFile], { log: "scripted-model.log" });
  const apiBase = await new Promise<string>((resolve, reject) => {
    model.stdout?.once("data", (data: Buffer) => resolve(data.toString().trim()));
    model.once("exit", () => reject(new Error("the scripted model server exited")));
  });

  const userData = path.join(root, "user-data");
  const extensions = path.join(root, "extensions");
  const settingsFile = path.join(userData, "User", "settings.json");
  const base = {
    "sidehand.server.command": SIDEHAND,
    "sidehand.approvalMode": "always",
    "sidehand.apiBase": apiBase,
    "workbench.startupEditor": "none",
    "security.workspace.trust.enabled": false,
    "workbench.tips.enabled": false,
    "chat.disableAIFeatures": true,
    "workbench.secondarySideBar.defaultVisibility": "hidden",
  };
  writeSettings(settingsFile, base); // no model: the panel must say so
  const install = spawn(CODE_SERVER, ["--user-data-dir", userData, "--extensions-dir", extensions, "--install-extension", VSIX], { env: cleanEnv, stdio: "inherit" });
  await new Promise((resolve) => install.on("exit", resolve));

  const port = await freePort();
  const codeServer = start(CODE_SERVER, ["--bind-addr", `127.0.0.1:${port}`, "--auth", "none", "--disable-telemetry", "--disable-update-check", "--disable-workspace-trust", "--user-data-dir", userData, "--extensions-dir", extensions, workspace], { env: cleanEnv, log: "code-server.log" });
  await until("code-server to listen", () => fetch(`http://127.0.0.1:${port}/healthz`).then((r) => r.ok).catch(() => false), 60_000);

  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],  // playwright gives it a fresh profile
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    let panel!: Frame;

    failure = async () => {
      await page.screenshot({ path: path.join(ARTIFACTS, "failure.png") }).catch(() => undefined);
      const html = await panelFrame(page).then((f) => f.content()).catch(() => "(no panel)");
      fs.writeFileSync(path.join(ARTIFACTS, "failure-panel.html"), html);
    };

    await step("open the workspace; the Sidehand panel shows", async () => {
      await page.goto(`http://127.0.0.1:${port}/?folder=${encodeURIComponent(workspace)}`);
      await page.locator(".monaco-workbench").waitFor({ timeout: 60_000 });
      const opened = Date.now();
      await page.locator('.activitybar [aria-label^="Sidehand"]').first().click();
      panel = await panelFrame(page);
      await panel.locator('button[data-action="send"]:not([disabled])').waitFor({ timeout: STEP_TIMEOUT });
      figures.panelReadyMs = Date.now() - opened;
    });

    await step("no Docker engine: the panel says so without a prompt; Retry clears it once it runs", async () => {
      const problem = panel.locator(".problem", { hasText: "cannot reach the Docker engine" });
      await problem.waitFor({ timeout: STEP_TIMEOUT });
      await problem.locator(".detail", { hasText: `cannot connect to ${engineLink}` }).waitFor();
      await page.locator(".part.sidebar").screenshot({ path: path.join(ARTIFACTS, "no-engine.png") });
      fs.symlinkSync(engine.slice("unix://".length), engineLink); // the engine is started
      await problem.locator("button", { hasText: "Retry" }).click();
      await panel.locator(".problem").waitFor({ state: "detached" });
    });

    await step("with no model, New session says so and offers the setting", async () => {
      await panel.locator('button[data-action="newSession"]').click();
      await panel.locator(".problem", { hasText: "settings are incomplete" }).waitFor();
      await panel.locator('.problem button', { hasText: "Set the model" }).waitFor();
    });

    await step("the banner's button opens the setting; setting it restarts the server", async () => {
      await panel.locator(".problem button", { hasText: "Set the model" }).click();
      const setting = (key: string) => page.locator(`.settings-editor .setting-item-contents[data-key="${key}"] input`).first();
      await setting("sidehand.model").fill("openai/scripted");
      await until("the setting saved", () => fs.readFileSync(settingsFile, "utf8").includes("openai/scripted"));
      await page.keyboard.press("Escape"); // the settings editor is a modal overlay
      await page.locator(".settings-editor").waitFor({ state: "hidden" });
      await panel.locator(".problem").waitFor({ state: "detached" });
      await panel.locator('button[data-action="send"]:not([disabled])').waitFor();
    });

    await step("a session streams its first text after Enter", async () => {
      await panel.locator('button[data-action="newSession"]').click();
      await until("the new session", async () => (await panel.locator("#session-select").inputValue()) !== "");
      await panel.locator("#prompt").fill("Fix add and div in calc.py");
      const pressed = Date.now();
      await panel.locator("#prompt").press("Enter");
      await panel.locator(".msg.agent", { hasText: "I'll fix" }).waitFor({ timeout: STEP_TIMEOUT });
      figures.enterToFirstTextMs = Date.now() - pressed;
    });

    await step("approve the edit for this session", async () => {
      const prompt = panel.locator(".permission");
      await prompt.waitFor({ timeout: STEP_TIMEOUT });
      await page.screenshot({ path: path.join(ARTIFACTS, "approval.png") });
      // By its option, not its name: the name says which tool ("Allow editor for this session").
      await prompt.locator('button[data-option="allow_session"]').click();
    });

    await step("the turn ends with both changes listed; agent HTML stays text", async () => {
      await panel.locator(".msg.agent", { hasText: "stays text" }).waitFor({ timeout: STEP_TIMEOUT });
      await panel.locator(".changes li", { hasText: "calc.py" }).filter({ hasText: "2 changes" }).waitFor();
      if (await panel.locator(".markdown img").count()) throw new Error("agent HTML was rendered");
      await panel.locator(".markdown", { hasText: "<img src=x onerror=alert(1)>" }).waitFor();
      await panel.locator(".markdown .hljs-keyword", { hasText: "def" }).first().waitFor();
      await panel.locator(".tool", { hasText: "grep" }).waitFor();
      await page.locator(".part.sidebar").screenshot({ path: path.join(ARTIFACTS, "vscode-panel.png") });
      await page.screenshot({ path: path.join(ARTIFACTS, "workbench-after-turn.png") });
    });

    await step("the page's CSP blocks inline scripts", async () => {
      const csp = await panel.locator('meta[http-equiv="Content-Security-Policy"]').getAttribute("content");
      if (!csp?.includes("default-src 'none'") || !/script-src 'nonce-[^']+';/.test(csp)) throw new Error(`weak CSP: ${csp}`);
      const ran = await panel.evaluate(() => {
        const script = document.createElement("script");
        script.textContent = "document.body.dataset.injected = 'yes'";
        document.body.appendChild(script);
        return document.body.dataset.injected === "yes";
      });
      if (ran) throw new Error("an inline script ran in the panel");
    });

    await step("hiding and showing the panel keeps the conversation", async () => {
      await page.locator('.activitybar [aria-label^="Explorer"]').first().click();
      await page.locator(".explorer-folders-view, .explorer-viewlet").first().waitFor();
      await page.locator('.activitybar [aria-label^="Sidehand"]').first().click();
      panel = await panelFrame(page);
      await panel.locator(".msg.agent", { hasText: "stays text" }).waitFor();
      await panel.locator(".changes li", { hasText: "calc.py" }).waitFor();
    });

    const modifiedLine = (text: string) => page.locator(".monaco-diff-editor .editor.modified .view-line", { hasText: text });
    const onDisk = () => fs.readFileSync(path.join(workspace, "calc.py"), "utf8");

    await step("open the change in VS Code's diff editor", async () => {
      await panel.locator('.changes button[data-action="openChange"]', { hasText: "calc.py" }).click();
      await modifiedLine("return a + b").waitFor();
      await modifiedLine("return a / b").waitFor();
      await page.screenshot({ path: path.join(ARTIFACTS, "vscode-diff.png") });
    });

    await step("accept the first hunk from the diff editor", async () => {
      await modifiedLine("return a + b").click();
      await page.locator('.editor-actions [aria-label^="Accept Change at Cursor"]').first().click();
      await until("calc.py on disk with the first hunk", () => onDisk().includes("return a + b"));
      await panel.locator(".changes li", { hasText: "calc.py" }).filter({ hasText: "1 change" }).waitFor();
    });

    await step("reject the second hunk; the file on disk has exactly the accepted change", async () => {
      await modifiedLine("return a / b").waitFor();
      await modifiedLine("return a / b").click();
      await page.locator('.editor-actions [aria-label^="Reject Change at Cursor"]').first().click();
      await panel.locator(".changes").waitFor({ state: "detached" });
      if (onDisk() !== EXPECTED) throw new Error(`calc.py is:\n${onDisk()}`);
    });

    await step("a code action on a selection runs in the panel", async () => {
      await palette(page, "View: Close All Editors");
      await page.keyboard.press("Control+P");
      await page.locator(".quick-input-widget input").fill("calc.py");
      await page.locator(".quick-input-list .monaco-list-row", { hasText: "calc.py" }).first().waitFor();
      await page.keyboard.press("Enter");
      const line = page.locator(".monaco-editor .view-line", { hasText: "def add" }).first();
      await line.click();
      await page.keyboard.press("Home");
      await page.keyboard.press("Shift+ArrowDown");
      await page.keyboard.press("Shift+ArrowDown");
      await palette(page, "Sidehand: Ask About Selection"); // attaches the selection to the next prompt
      const chip = panel.locator(".chip", { hasText: "calc.py:1-3" });
      await chip.waitFor();
      await chip.locator("button").click();
      await chip.waitFor({ state: "detached" });
      await palette(page, "View: Focus Active Editor Group"); // back to the editor, selection kept
      // The code actions come from the server; the menu shows once they are in (Ctrl+. again if
      // it was pressed before the editor had asked for them).
      const explain = page.locator(".action-widget .monaco-list-row", { hasText: "Sidehand: Explain" });
      await until("the code action menu", async () => {
        await page.keyboard.press("Control+.");
        return explain.waitFor({ timeout: 3000 }).then(() => true, () => false);
      });
      await explain.click();
      await panel.locator(".msg.agent", { hasText: "returns the sum" }).waitFor({ timeout: STEP_TIMEOUT });
      await page.screenshot({ path: path.join(ARTIFACTS, "code-action.png") });
    });

    await step("Cancel stops a running turn", async () => {
      await panel.locator("#prompt").fill("Now take your time");
      await panel.locator("#prompt").press("Enter");
      await panel.locator('button[data-action="cancel"]').click();
      await panel.locator(".notice", { hasText: "Cancelled." }).waitFor();
      await panel.locator('button[data-action="cancel"]').waitFor({ state: "detached" });
    });

    await step("the server dies: the panel says so, restarts it, and reloads the session", async () => {
      const server = serverPid(codeServer.pid!);
      if (server === undefined) throw new Error("no sidehand lsp process under code-server");
      process.kill(server, "SIGKILL");
      const problem = panel.locator(".problem", { hasText: "The Sidehand server stopped" });
      await problem.waitFor();
      await problem.locator("button", { hasText: "Restart server" }).click();
      await panel.locator(".problem").waitFor({ state: "detached" });
      // The session shown before is replayed from its log by the new server process.
      await panel.locator(".notice", { hasText: "reloaded from its log" }).waitFor();
      await panel.locator(".msg.agent", { hasText: "returns the sum" }).waitFor();
      if ((await panel.locator(".msg.user").count()) !== 2) throw new Error("the replay lost or duplicated messages");
    });

    await step("a past session reloads with its history", async () => {
      // The other session in the list: the first one (a killed server may not have saved titles).
      const select = panel.locator("#session-select");
      const values = await select.locator("option").evaluateAll((options) => options.map((o) => (o as HTMLOptionElement).value));
      const current = await select.inputValue();
      const target = values.find((v) => v && v !== current);
      if (!target) throw new Error(`no other session in ${JSON.stringify(values)}`);
      await select.selectOption(target);
      await panel.locator(".msg.user", { hasText: "Fix add and div in calc.py" }).waitFor();
      await panel.locator(".tool", { hasText: "grep -n return calc.py" }).waitFor();
      await panel.locator(".msg.agent", { hasText: "stays text" }).waitFor();
      if ((await panel.locator(".msg.user").count()) !== 1) throw new Error("the replay duplicated messages");
    });
  } finally {
    await browser.close();
    const log = findFile(path.join(userData, "logs"), (f) => f.endsWith("Sidehand.log"));
    const activated = log && /activated in ([\d.]+) ms/.exec(fs.readFileSync(log, "utf8"));
    if (activated?.[1]) figures.activationMs = Number(activated[1]);
    const ready = log && /server ready in (\d+) ms/.exec(fs.readFileSync(log, "utf8"));
    if (ready?.[1]) figures.serverReadyMs = Number(ready[1]);
    if (log) fs.copyFileSync(log, path.join(ARTIFACTS, "sidehand-output.log"));
    figures.vsixBytes = fs.statSync(VSIX).size;
    await stopAll();
    // Sandboxes of a server that was killed (the step above does that on purpose) stay behind:
    // `sidehand sandbox reap` removes the containers of processes that are gone.
    spawnSync(SIDEHAND, ["sandbox", "reap"], { env: cleanEnv, stdio: "inherit" });
    if (results.every((r) => r.ok)) fs.rmSync(root, { recursive: true, force: true });
    fs.writeFileSync(path.join(ARTIFACTS, "results.json"), JSON.stringify({ results, figures }, null, 2));
  }
}

/** The `sidehand lsp` process code-server's extension host started (in code-server's process group). */
function serverPid(group: number): number | undefined {
  for (const entry of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const args = fs.readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0");
      const stat = fs.readFileSync(`/proc/${entry}/stat`, "utf8");
      const pgrp = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[2]);
      if (pgrp === group && args.includes(SIDEHAND) && args.includes("lsp")) return Number(entry);
    } catch {
      // the process ended while we looked
    }
  }
  return undefined;
}

function findFile(dir: string, match: (file: string) => boolean): string | undefined {
  if (!fs.existsSync(dir)) return undefined;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      const found = findFile(full, match);
      if (found) return found;
    } else if (match(full)) return full;
  }
  return undefined;
}

main()
  .catch((error: unknown) => {
    if (!results.some((r) => !r.ok)) results.push({ step: "set-up", ok: false, ms: 0, error: String(error) });
    console.error(error);
  })
  .finally(async () => {
    await stopAll();
    const passed = results.filter((r) => r.ok).length;
    console.log(`figures: ${JSON.stringify(figures)}`);
    console.log(`${passed} passed, ${results.length - passed} failed`);
    process.exitCode = passed === results.length && results.length > 0 ? 0 : 1;
  });
