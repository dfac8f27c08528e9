// Parse Mermaid files with mermaid's own parser (mermaid.parse), in Node with a jsdom
// window. Run from target/test-deps/mermaid (tests/deps/mermaid.sh) with the file
// names as arguments, as `node --input-type=module -e "$(cat this)" -- FILE...`.
// Prints `ok FILE TYPE` or `FAIL FILE: reason` per file; exits 1 if any failed.
import { readFileSync } from "node:fs";
import { JSDOM } from "jsdom";

const dom = new JSDOM("<!DOCTYPE html><body></body>");
globalThis.window = dom.window;
globalThis.document = dom.window.document;
const { default: mermaid } = await import("mermaid");

let failed = 0;
for (const f of process.argv.slice(1).filter((a) => a !== "--")) {
  try {
    const r = await mermaid.parse(readFileSync(f, "utf8"));
    console.log(`ok ${f} ${r.diagramType}`);
  } catch (e) {
    failed++;
    console.log(`FAIL ${f}: ${e.message}`);
  }
}
process.exit(failed ? 1 : 0);
