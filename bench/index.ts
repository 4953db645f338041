/**
 * `npm run bench`: runs every benchmark in bench/ (files named *.bench.ts),
 * one after the other, each printing its own table of ratios against a
 * baseline measured in the same run. Pass names to run only some:
 *   npm run bench -- chunkpath
 * The peer bench (radosgw; it installs Ceph's packages and takes ~15 min)
 * runs only when named: npm run bench -- peer
 */
import { readdirSync } from "node:fs";
import { spawnSync } from "node:child_process";

const dir = new URL(".", import.meta.url).pathname;
const only = process.argv.slice(2);
const OPT_IN = ["peer"];
const files = readdirSync(dir)
  .filter((f) => f.endsWith(".bench.ts"))
  .filter((f) => (only.length === 0 ? !OPT_IN.some((o) => f.startsWith(o)) : only.some((o) => f.startsWith(o))))
  .sort();
if (files.length === 0) {
  console.error(`no benchmark matches ${only.join(", ") || "*.bench.ts"} in bench/`);
  process.exit(2);
}
let failed = 0;
for (const f of files) {
  console.log(`\n=== ${f} ===`);
  const r = spawnSync(process.execPath, ["--import=tsx", `${dir}${f}`], { stdio: "inherit" });
  if (r.status !== 0) failed++;
}
process.exit(failed ? 1 : 0);
