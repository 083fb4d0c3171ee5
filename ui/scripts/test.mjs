// Unit tests of the UI's pure modules: each src/**/*.test.ts is bundled by rolldown (which
// strips the types) into a temporary directory and run by node's own test runner.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { build } from "rolldown";

const root = resolve(import.meta.dirname, "..", "src");
const tests = readdirSync(root, { recursive: true })
  .filter((name) => name.endsWith(".test.ts"))
  .map((name) => join(root, name));
if (tests.length === 0) {
  console.error(`no *.test.ts under ${root}`);
  process.exit(1);
}
const out = mkdtempSync(join(tmpdir(), "tickscan-ui-test-"));
try {
  await build({
    input: tests,
    platform: "node",
    logLevel: "warn",
    output: { dir: out, format: "esm", entryFileNames: "[name].mjs" },
  });
  const files = readdirSync(out).filter((name) => name.endsWith(".test.mjs")).map((name) => join(out, name));
  const run = spawnSync(process.execPath, ["--test", ...files], { stdio: "inherit" });
  process.exitCode = run.status ?? 1;
} finally {
  rmSync(out, { recursive: true, force: true });
}
