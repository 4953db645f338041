/**
 * The gateway's shape (issue 15, structure): operations live per resource
 * under src/gateway/ops/, ops.ts is only their table, and the gateway never
 * builds or reads the storage actor's list tokens (the SDK hands out opaque
 * ones: tokenAfterPrefix).
 */
import test from "ava";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { tokenAfterPrefix } from "../../src/client/index.ts";
import { decodeToken } from "../../src/store/index.ts";

const dir = new URL("../../src/gateway/", import.meta.url).pathname;
const files = [...readdirSync(dir).filter((f) => f.endsWith(".ts")), ...readdirSync(join(dir, "ops")).map((f) => join("ops", f))];

test("no gateway file builds or parses list tokens", (t) => {
  for (const f of files) {
    const src = readFileSync(join(dir, f), "utf8");
    t.false(/\b(encodeToken|decodeToken)\b/.test(src), `${f} uses the store's token codec`);
  }
});

test("ops.ts is the table: every handler lives in ops/<resource>.ts", (t) => {
  const table = readFileSync(join(dir, "ops.ts"), "utf8");
  t.false(/ctx\.client\./.test(table), "ops.ts calls the SDK itself");
  for (const m of ["objects", "buckets", "multipart", "subresources", "common"]) t.true(files.includes(join("ops", `${m}.ts`)), `ops/${m}.ts`);
});

test("the SDK's after-a-prefix token is one the store reads as 'after everything under this prefix'", (t) => {
  t.deepEqual(decodeToken(tokenAfterPrefix("photos/2024/")), { after: "photos/2024/", cp: true });
});
