/**
 * Slow links (issue 14, defect 10): a direct upload's keepalives share the
 * writer's socket with up to a window of unacknowledged chunks, so on a slow
 * link they arrive late. The storage actor must not take the writer for gone
 * while its chunks keep landing in the stream.
 */
import test from "ava";
import { createHash, randomBytes } from "node:crypto";
import { storage } from "../../actors/storage/index.ts";
import { ShoalClient } from "../../src/client/index.ts";
import { DEFAULT_IDLE_MS } from "../../src/transfer/index.ts";
import { runActor } from "../helpers/actors.ts";
import { startServer } from "../helpers/nats.ts";
import { startProxy } from "../helpers/faultproxy.ts";

const RATE = Number(process.env["SHOAL_SLOW_RATE"] ?? 1_200_000); // bytes per second, writer → server
const SIZE = 9 * 1024 * 1024;

test("a direct upload over a slow link completes: liveness counts chunks landing, not keepalives", async (t) => {
  t.timeout(180_000);
  const srv = await startServer(t);
  await runActor(t, srv.url, storage);
  const proxy = await startProxy(t, Number(new URL(srv.url).port));
  const client = await ShoalClient.connect({ servers: proxy.url() });
  t.teardown(() => client.close());
  await client.createBucket("slow");
  const body = randomBytes(SIZE);
  proxy.throttle(RATE);
  const t0 = Date.now();
  const info = await client.put("slow", "big", body, { windowBytes: 8 * 1024 * 1024 });
  const ms = Date.now() - t0;
  proxy.heal();
  t.log(`${SIZE} bytes at ${RATE} B/s took ${ms} ms (idle timeout ${DEFAULT_IDLE_MS} ms)`);
  // the window took longer to cross the link than the idle timeout: keepalives were late
  t.true((8 * 1024 * 1024) / RATE > DEFAULT_IDLE_MS / 1000, "the link is slow enough to delay keepalives past the idle timeout");
  t.is(info.size, SIZE);
  t.is(info.etag, createHash("md5").update(body).digest("hex"));
  t.true(Buffer.from(await client.getBytes("slow", "big")).equals(body));
});
