/**
 * Bucket and object commands, in the forms people know from mc and `aws s3`:
 *   shoal mb <bucket> [--replicas N]        shoal rb <bucket> [--force]
 *   shoal ls [<bucket>[/<prefix>]] [--recursive]
 *   shoal put <file|-> <bucket>/<key> [--content-type T] [--etag md5|sha256]
 *   shoal get <bucket>/<key> [file|-] [--range a-b]
 *   shoal rm <bucket>/<key>...               shoal cp <bucket>/<key> <bucket>/<key>
 *   shoal stat <bucket>[/<key>]
 * All take --json. Exit codes: 0 ok, 1 failure, 2 usage, 3 not found.
 */
import { createReadStream, createWriteStream, statSync } from "node:fs";
import { pipeline } from "node:stream/promises";
import { Readable, Transform } from "node:stream";
import { ShoalClient } from "../client/index.ts";
import { ShoalError } from "../errors/index.ts";
import { parseFlags } from "./args.ts";
import { commonFlagsLayer, configFor, EXIT } from "./main.ts";
import { progressBar } from "./progress.ts";

type Out = NodeJS.WritableStream;

/** Splits `bucket/key…` (the key may hold more slashes). */
export function splitPath(p: string | undefined, needKey: boolean): { bucket: string; key: string } {
  if (!p) throw new ShoalError("InvalidArgument", needKey ? "expected <bucket>/<key>" : "expected <bucket>");
  const i = p.indexOf("/");
  const bucket = i < 0 ? p : p.slice(0, i);
  const key = i < 0 ? "" : p.slice(i + 1);
  if (needKey && !key) throw new ShoalError("InvalidArgument", `expected <bucket>/<key>, got ${JSON.stringify(p)}`);
  return { bucket, key };
}

async function client(values: { nats?: string | undefined; config?: string | undefined; "log-level"?: string | undefined }): Promise<ShoalClient> {
  const cfg = configFor(values, commonFlagsLayer(values));
  return ShoalClient.connect(cfg.nats);
}

const human = (n: number) => (n < 1024 ? `${n} B` : n < 1024 ** 2 ? `${(n / 1024).toFixed(1)} KiB` : n < 1024 ** 3 ? `${(n / 1024 ** 2).toFixed(1)} MiB` : `${(n / 1024 ** 3).toFixed(2)} GiB`);

export async function runObjectCommand(command: string, args: string[], stdout: Out, stderr: Out): Promise<number> {
  const { values, positionals } = parseFlags(
    args,
    {
      replicas: { type: "string" },
      force: { type: "boolean" },
      recursive: { type: "boolean", short: "r" },
      range: { type: "string" },
      "content-type": { type: "string" },
      etag: { type: "string" },
      "no-progress": { type: "boolean" },
    },
    true,
  );
  const json = values.json === true;
  const print = (human: string, data: unknown) => stdout.write(json ? `${JSON.stringify(data)}\n` : `${human}\n`);
  const c = await client(values);
  try {
    switch (command) {
      case "mb": {
        const { bucket } = splitPath(positionals[0], false);
        const r = values.replicas === undefined ? undefined : Number(values.replicas);
        const info = await c.createBucket(bucket, r === undefined ? {} : { replicas: r as 1 | 3 | 5 });
        print(`Bucket created: ${bucket} (replicas ${info.replicas})`, info);
        return EXIT.ok;
      }
      case "rb": {
        const { bucket } = splitPath(positionals[0], false);
        const r = await c.deleteBucket(bucket, { force: values.force === true });
        print(`Bucket removed: ${bucket}`, r);
        return EXIT.ok;
      }
      case "ls": {
        if (!positionals[0]) {
          const buckets = await c.listBuckets();
          if (json) print("", buckets);
          else for (const b of buckets) stdout.write(`${b.created}  ${b.name}/  (R${b.replicas})\n`);
          return EXIT.ok;
        }
        const { bucket, key: prefix } = splitPath(positionals[0], false);
        const items = [];
        for await (const e of c.list(bucket, { prefix, ...(values.recursive ? {} : { delimiter: "/" }) })) {
          if (json) items.push(e);
          else if ("key" in e) stdout.write(`${e.mtime}  ${String(e.size).padStart(12)}  ${e.key}\n`);
          else stdout.write(`${"".padStart(24)}  ${"PRE".padStart(12)}  ${e.prefix}\n`);
        }
        if (json) print("", items);
        return EXIT.ok;
      }
      case "put": {
        const [src, dest] = positionals;
        if (!src) throw new ShoalError("InvalidArgument", "usage: shoal put <file|-> <bucket>/<key>");
        const etag = values.etag;
        if (etag !== undefined && etag !== "md5" && etag !== "sha256") throw new ShoalError("InvalidArgument", "--etag is md5 (the default: the body's MD5, as S3) or sha256 (from the SHA-256, no MD5 computed)");
        const { bucket, key } = splitPath(dest, true);
        const size = src === "-" ? undefined : statSync(src).size;
        let body: Readable = src === "-" ? process.stdin : createReadStream(src, { highWaterMark: 1024 * 1024 });
        const bar = !values["no-progress"] && !json ? progressBar(stderr, `put ${bucket}/${key}`, size) : undefined;
        if (bar) body = body.pipe(counting(bar.update));
        const info = await c.put(bucket, key, body, { ...(values["content-type"] ? { contentType: values["content-type"] } : {}), ...(etag ? { etag } : {}) });
        bar?.stop();
        print(`${bucket}/${key}: ${human(info.size)} etag ${info.etag}`, info);
        return EXIT.ok;
      }
      case "get": {
        const { bucket, key } = splitPath(positionals[0], true);
        const dest = positionals[1] ?? "-";
        const range = values.range === undefined ? undefined : values.range.startsWith("bytes=") ? values.range : `bytes=${values.range}`;
        const r = await c.get(bucket, key, range ? { range } : {});
        const bar = dest !== "-" && !values["no-progress"] && !json ? progressBar(stderr, `get ${bucket}/${key}`, r.length) : undefined;
        let src: Readable = r.stream();
        if (bar) src = src.pipe(counting(bar.update));
        await pipeline(src, dest === "-" ? stdout : createWriteStream(dest));
        bar?.stop();
        if (dest !== "-") print(`${bucket}/${key} → ${dest}: ${human(r.length)}`, { ...r.info, length: r.length, file: dest });
        return EXIT.ok;
      }
      case "rm": {
        if (positionals.length === 0) throw new ShoalError("InvalidArgument", "usage: shoal rm <bucket>/<key>...");
        let failed = 0;
        for (const p of positionals) {
          const { bucket, key } = splitPath(p, true);
          await c.delete(bucket, key);
          print(`Removed ${bucket}/${key}`, { bucket, key, deleted: true });
        }
        return failed ? EXIT.failure : EXIT.ok;
      }
      case "cp": {
        const from = splitPath(positionals[0], true);
        const to = splitPath(positionals[1], true);
        const info = await c.copy(from, to);
        print(`${from.bucket}/${from.key} → ${to.bucket}/${to.key} (${human(info.size)})`, info);
        return EXIT.ok;
      }
      case "stat": {
        const { bucket, key } = splitPath(positionals[0], false);
        if (!key) {
          const info = await c.bucketInfo(bucket);
          print(
            `Bucket ${info.name}: ${info.objects} objects, ${human(info.bytes ?? 0)}, replicas ${info.replicas}${info.cluster ? `, leader ${info.cluster.leader}` : ""}`,
            info,
          );
          return EXIT.ok;
        }
        const m = await c.head(bucket, key);
        print(`${bucket}/${key}\n  size: ${m.size}\n  etag: ${m.etag}\n  type: ${m.contentType}\n  mtime: ${m.mtime}\n  sha256: ${m.sha256}${Object.entries(m.metadata).map(([k, v]) => `\n  meta ${k}: ${v}`).join("")}`, m);
        return EXIT.ok;
      }
      default:
        throw new ShoalError("InvalidArgument", `unknown command ${command}`);
    }
  } finally {
    await c.close();
  }
}

function counting(update: (n: number) => void): Transform {
  let n = 0;
  return new Transform({
    transform(chunk: Buffer, _e, cb) {
      n += chunk.length;
      update(n);
      cb(null, chunk);
    },
  });
}
