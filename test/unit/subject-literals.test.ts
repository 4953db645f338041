/**
 * Names are built once (STYLE.md): no `shoal.`, `$O.`, `$KV.` or `KV_`
 * subject, stream or KV literal outside src/subjects, in src/, actors/ and
 * bin/. What counts:
 *   - string literals and the text of template literals (the code inside
 *     `${…}` is scanned as code), in .ts, .js and .mjs files;
 *   - not comments: doc comments may name subjects (docs/subjects.md is the
 *     reference, and a comment is read, never sent);
 *   - not test files: tests spell the wire's names on purpose, to pin them
 *     (a test that built its subjects with src/subjects could not notice the
 *     names changing).
 * An actor contract's `consumes`/`publishes` strings are literals like any
 * other: they are built with src/subjects too, so the contract cannot drift
 * from the names.
 */
import test from "ava";
import { readFileSync, readdirSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { stringLiterals } from "../helpers/literals.ts";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const SCANNED = ["src", "actors", "bin"];
const SUBJECTS_DIR = "src/subjects/";
const FORBIDDEN = /shoal\.|\$O\.|\$KV\.|KV_/;

/**
 * Literals that match but are no subject, stream or KV name: each with the
 * file, the exact text and why it stays.
 */
const NOT_NAMES: ReadonlyArray<{ file: string; text: string; why: string }> = [
  { file: "src/engine/install.ts", text: "shoal.sources", why: "the file name of the private apt source list" },
  { file: "src/runtime/actor.ts", text: "shoal.rawReply", why: "a Symbol's description" },
];

/**
 * Files allowed to keep a subject literal for now, each with why. Empty since
 * the storage actor's contract, the reserved metadata prefix and the parts
 * metadata name moved to src/subjects; an entry whose file no longer has a
 * literal fails the test, so the list only shrinks.
 */
const PENDING: ReadonlyArray<{ file: string; why: string }> = [];

function files(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(join(ROOT, dir))) {
    const rel = `${dir}/${e}`;
    if (e === "node_modules") continue;
    if (statSync(join(ROOT, rel)).isDirectory()) out.push(...files(rel));
    else if (/\.(ts|js|mjs)$/.test(e) && !/\.test\.ts$/.test(e)) out.push(rel);
  }
  return out;
}

/** Every forbidden literal, as `file:line "text"`, with the allowed ones left out. */
function findings(): Map<string, string[]> {
  const byFile = new Map<string, string[]>();
  for (const file of SCANNED.flatMap(files)) {
    if (file.startsWith(SUBJECTS_DIR)) continue;
    for (const lit of stringLiterals(readFileSync(join(ROOT, file), "utf8"))) {
      if (!FORBIDDEN.test(lit.text)) continue;
      if (NOT_NAMES.some((a) => a.file === file && a.text === lit.text)) continue;
      const list = byFile.get(file) ?? [];
      list.push(`${file}:${lit.line} ${JSON.stringify(lit.text)}`);
      byFile.set(file, list);
    }
  }
  return byFile;
}

test("no shoal./$O./$KV./KV_ literal outside src/subjects (src/, actors/, bin/; comments and tests excepted)", (t) => {
  const found = findings();
  const unexpected = [...found].filter(([file]) => !PENDING.some((p) => p.file === file)).flatMap(([, l]) => l);
  t.deepEqual(unexpected, [], `build these names with src/subjects:\n${unexpected.join("\n")}`);
  const cleared = PENDING.filter((p) => !found.has(p.file)).map((p) => p.file);
  t.deepEqual(cleared, [], `no literal left in ${cleared.join(", ")}: remove it from PENDING`);
  for (const a of NOT_NAMES) t.true(stringLiterals(readFileSync(join(ROOT, a.file), "utf8")).some((l) => l.text === a.text), `${a.file} no longer has ${JSON.stringify(a.text)}: remove it from NOT_NAMES`);
});

test("the literal scanner: strings, template texts and code inside ${…}; not comments, regexes or identifiers", (t) => {
  const src = [
    'const a = "shoal.v1.obj"; // "shoal.comment"',
    "/* `$O.block` */ const b = `$KV.${name}.x`;",
    "const c = `a${f(`KV_inner`)}b` + 'q\\'s';",
    "const d = x / 2 / y; const re = /shoal\\.v1/g; return /$O\\./.test(s);",
    "const KV_NAMES = 1; const e = obj.shoal; const f = { k: `${a}${b}` };",
  ].join("\n");
  const texts = stringLiterals(src).map((l) => `${l.line}:${l.text}`);
  t.deepEqual(texts, ["1:shoal.v1.obj", "2:$KV.", "2:.x", "3:a", "3:KV_inner", "3:b", "3:q\\'s", "5:", "5:", "5:"]);
  t.true(FORBIDDEN.test("shoal.v1.obj") && FORBIDDEN.test("KV_shoal_plans") && FORBIDDEN.test("$O.b.M.>") && !FORBIDDEN.test("SHOAL_EVENTS"));
});
