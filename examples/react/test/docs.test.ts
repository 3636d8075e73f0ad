// The tsx blocks of ../README.md and of the project's README.md, type-checked with the hook and rendered
// in a real React tree against the test SSE server: documentation that compiles and runs.

import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath, pathToFileURL } from "node:url";

import { EventSource as NodeEventSource } from "eventsource";
import { JSDOM } from "jsdom";
import { createElement, type FunctionComponent } from "react";
import { createRoot } from "react-dom/client";
import ts from "typescript";

import { SseServer } from "./sseServer.ts";

const HERE = dirname(fileURLToPath(import.meta.url));
const EXAMPLE = join(HERE, "..");
const DOCS = [join(EXAMPLE, "README.md"), join(EXAMPLE, "..", "..", "README.md")];
const HOOK = join(EXAMPLE, "src", "useStreamEvents.ts");

/** The tsx blocks of a Markdown file (fences may be indented, as in a list). */
function tsxBlocks(path: string): string[] {
  const blocks: string[] = [];
  const lines = readFileSync(path, "utf8").split("\n");
  for (let i = 0; i < lines.length; i++) {
    const open = /^( *)```tsx\s*$/.exec(lines[i]!);
    if (!open) continue;
    const indent = open[1]!.length;
    const body: string[] = [];
    for (i++; !/^ *```\s*$/.test(lines[i]!); i++) body.push(lines[i]!.slice(indent));
    blocks.push(body.join("\n"));
  }
  return blocks;
}

const dom = new JSDOM("<!doctype html><div id='root'></div>");
const globals = globalThis as Record<string, unknown>;
const work = mkdtempSync(join(HERE, ".docs-")); // inside the example: its tsconfig and node_modules apply
let server: SseServer;

before(async () => {
  globals.window = dom.window;
  globals.document = dom.window.document;
  globals.EventSource = NodeEventSource;
  server = new SseServer(30, () => ({ kind: "events", count: 30, end: "hold" }));
  await server.start();
});

after(async () => {
  await server.stop();
  dom.window.close();
  rmSync(work, { recursive: true, force: true });
});

const cases = DOCS.flatMap((path) => tsxBlocks(path).map((code, n) => ({ path, code, n })));

test("the READMEs have tsx blocks", () => {
  assert.ok(cases.length >= 2);
});

for (const { path, code, n } of cases) {
  test(`${path.slice(EXAMPLE.length - "examples/react".length)} tsx block ${n + 1} compiles and renders live events`, async () => {
    const components = [...code.matchAll(/^(?:export )?function (\w+)/gm)].map((m) => m[1]!);
    assert.ok(components.length > 0, "the block defines a component");
    // The automatic JSX runtime, as an app's bundler would use: no `import React` in the docs.
    const source = "/** @jsxRuntime automatic @jsxImportSource react */\n" + code
      .replace(/from "\.\/useStreamEvents"/, `from ${JSON.stringify(HOOK)}`)
      .replace(/"https?:\/\/[^"]+"/g, JSON.stringify(server.url))
      .replace(/^function /gm, "export function ");
    const file = join(work, `block${n}-${components[0]}.tsx`);
    writeFileSync(file, source);

    const program = ts.createProgram([file], {
      strict: true, noEmit: true, jsx: ts.JsxEmit.ReactJSX, module: ts.ModuleKind.NodeNext,
      moduleResolution: ts.ModuleResolutionKind.NodeNext, target: ts.ScriptTarget.ES2022,
      allowImportingTsExtensions: true, skipLibCheck: true, types: ["node"], typeRoots: [join(EXAMPLE, "node_modules", "@types")],
    });
    const problems = ts.getPreEmitDiagnostics(program).map((d) => ts.flattenDiagnosticMessageText(d.messageText, "\n"));
    assert.deepEqual(problems, []);

    const module = (await import(pathToFileURL(file).href)) as Record<string, FunctionComponent<{ streamId: string }>>;
    const container = dom.window.document.createElement("div");
    const root = createRoot(container);
    root.render(createElement(module[components[0]!]!, { streamId: "1" }));
    const deadline = Date.now() + 10_000;
    while (!/live/.test(container.textContent ?? "") || !/(stream\.withdrawn|30 events)/.test(container.textContent ?? "")) {
      assert.ok(Date.now() < deadline, `not live with events: ${container.textContent}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    root.unmount();
  });
}
