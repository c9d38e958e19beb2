// Bundles the extension (Node, CommonJS), the panel's page (browser) and, with --tests / --e2e,
// the unit tests and the end-to-end scenario.
import * as esbuild from "esbuild";
import { readdirSync } from "node:fs";

const production = process.argv.includes("--production");
const common = { bundle: true, logLevel: "warning", sourcemap: !production, minify: production, target: "es2022" };

const builds = [
  { ...common, entryPoints: ["src/extension.ts"], outfile: "dist/extension.js", platform: "node", format: "cjs", external: ["vscode"] },
  { ...common, entryPoints: ["webview/main.ts"], outfile: "dist/webview.js", platform: "browser", format: "iife" },
  { ...common, entryPoints: ["webview/panel.css"], outfile: "dist/webview.css" },
];
if (process.argv.includes("--tests")) {
  const tests = readdirSync("test").filter((f) => f.endsWith(".test.ts")).map((f) => `test/${f}`);
  builds.push({ ...common, entryPoints: tests, outdir: "out/test", platform: "node", format: "cjs", sourcemap: true });
}
if (process.argv.includes("--e2e")) {
  builds.push({ ...common, entryPoints: ["e2e/scenario.ts"], outfile: "out/e2e/scenario.js", platform: "node", format: "cjs", external: ["playwright-core"] });
}

if (process.argv.includes("--watch")) {
  for (const build of builds) await (await esbuild.context(build)).watch();
} else {
  await Promise.all(builds.map((build) => esbuild.build(build)));
}
