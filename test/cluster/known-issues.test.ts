/**
 * Defects the model test (test/cluster/model.test.ts) found, their status,
 * and the reproductions that are not plain tests elsewhere.
 *
 * THE CAUSE OF KNOWN ISSUES 1 AND 2 (and of the "ALSO SEEN" reads below),
 * measured: a STALE STREAM LEADER. A server cut off from its peers keeps
 * believing it leads the streams it led, for seconds, while the other two
 * elect a leader and acknowledge writes. The JetStream API's leader-only
 * requests (STREAM.MSG.GET — Shoal's "leader reads" — and STREAM.INFO) are
 * answered by whoever believes it leads, and a request takes the first
 * answer. So through the cut-off server (an actor connected to it while its
 * routes are cut) and, right after a heal, through any server, the stale
 * leader answers from its old state. Logged right after each heal in the
 * reproduction below (each server's own /jsz view of KV_shoal_multipart):
 *   round 4: n1 "leader n1, last 68"; n2 (healed) "leader n2, last 65"; n3 "leader n1, last 68"
 *   round 6: n1 (healed) "leader n1, last 97"; n2, n3 "leader n2, last 101"
 *   round 7: n2 (healed) "leader n2, last 113"; n1, n3 "leader n1, last 117"
 * Not Direct Get on a follower (Shoal had moved those reads to the leader
 * already), not a lagging new leader (nats-server 2.15 marks a new leader
 * only once it has applied its log), not the list index's consumer.
 * The fix: src/runtime/linear.ts — a read barrier (an empty message on the
 * stream, which only a leader with a quorum can acknowledge) read back in the
 * same request as the data, or waited for by the list index's own consumer.
 * test/cluster/stale-leader.test.ts makes a stale leader on purpose and
 * checks each read path; each of its plain tests fails without the fix.
 *
 * KNOWN ISSUE 1 — FIXED: right after a heal, an acknowledged
 * CreateMultipartUpload answered NoSuchUpload to the next UploadPart (1 of
 * 54 uploads in one run). A miss of the upload record is now confirmed with
 * a linearizable read before it becomes NoSuchUpload (src/store/multipart.ts
 * readUpload → kvGetLinear, src/runtime/replicas.ts). Checked by
 * stale-leader.test.ts ("… never turns an acknowledged
 * CreateMultipartUpload into NoSuchUpload"; without the fix: NoSuchUpload).
 * Found by SHOAL_SEED=878013413 SHOAL_PATH=3 and SHOAL_SEED=881377822
 * SHOAL_PATH=0 (replayPath "ABAACAFAAI:VF") of model.test.ts. The loop below
 * (SHOAL_KNOWN=1) is kept as a probe: 9 rounds, 54 uploads, none lost.
 *
 * KNOWN ISSUE 2 — FIXED: a LIST right after a heal missed acknowledged
 * writes (SHOAL_SEED=879482286 SHOAL_PATH=0, replayPath
 * "DBGAABBACABADADBED:VVV"; and SHOAL_SOAK=1 SHOAL_SEED=879398279). The
 * index asked the (stale) leader for the last metadata sequence and counted
 * itself caught up. It now publishes the read barrier and waits until its own
 * consumer delivers it (KeyIndex.catchUp, src/store/index.ts); DeleteBucket's
 * emptiness check (hasLiveObject) reads up to the barrier the same way.
 * Checked by stale-leader.test.ts ("… never lets a LIST miss, or
 * DeleteBucket's emptiness check overlook, an acknowledged write"; without
 * the fix: a listing without the write).
 *
 * FIXED, same cause — GET/HEAD and the writers' compare-and-set read:
 * headObject (src/store/reader.ts) read a key's head with a plain leader
 * read, so through a stale leader a HEAD returned the replaced version
 * ("v1 at 2, v2 at 4 acknowledged, HEAD answered 2"). On R>1 streams it now
 * reads past the read barrier (linearLast); R1 streams, and streams without
 * Direct Get or rollups (a stock client may create those), keep the leader
 * read. Checked by stale-leader.test.ts ("a HEAD through a stale leader …").
 * This was the family of these soak findings:
 *   - SHOAL_SOAK=1 SHOAL_SEED=881282197 (run 1): a GET of a/1 returned its
 *     FIRST version after three acknowledged overwrites, once n2's links
 *     were healed;
 *   - SHOAL_SOAK=1 SHOAL_SEED=879398279: a GET of b/x/1 returned NoSuchKey
 *     after an acknowledged copy, after heal();
 *   - SHOAL_SEED=881131770: a delete of a/1 answered deleted:false although
 *     a/1 held an acknowledged version (the delete's read of the key's head).
 * Cost: one barrier publish per head read of an R>1 stream, shared by the
 * reads in flight (measured in docs/architecture.md, "Read barriers").
 *
 * KNOWN ISSUE 3 — an older acknowledged version came back (seen once in the
 * soak, not reproduced on replay; ambiguous commits, issue 14 defect 9 /
 * multipart defect 8; not investigated on this branch).
 *   SHOAL_SOAK=1 SHOAL_SEED=879398277 SHOAL_PATH=1, replayPath "EBP:F"
 *   (with the soak's command weights of that day; they have changed since):
 *     …, multipart("a/1", parts 763181 B) with killServer(n2) after 328 ms,
 *     restartServer(), isolate(n3, routes only), …, put("a/1", 960 B),
 *     get("a/1"), …
 *   → the multipart completion of a/1 was acknowledged, then the put of a/1
 *     (960 B) was acknowledged and read back, and at the end of the run a/1
 *     read back as the multipart's bytes. A completion still being retried
 *     inside the actor after the server kill, landing after the later put,
 *     would do this; not confirmed on a cluster. The mechanism is real and
 *     is FIXED: the SDK retries a call whose answer did not come (same
 *     request id); when the retry committed and was acknowledged while the
 *     first attempt was still copying parts, the first attempt's commit met
 *     a wrong last sequence, re-read the head, and committed on top — after
 *     the later put. commitChunks now looks, on that conflict, for a commit
 *     of its own request id after the revision it compared against, and
 *     answers with it instead (src/store/writer.ts, ownCommitSince).
 *     Test: ambiguous › "a slow attempt of a call whose retry already
 *     committed …" (without the fix the attempt committed again, on top of
 *     the later write, instead of answering with its retry's commit).
 *     Left: an attempt that reads the head only after its retry's commit and
 *     the later put still commits on top (it sees no conflict); only a walk
 *     of the key's history on every put with a request id would catch it.
 *
 * OPEN, FOUND 2 DECEMBER 2026 — SHOAL_SEED=898979964 SHOAL_PATH=4 (the
 * fifth run of that seed, CI budget): on 7b6d9e0 it failed "final get of
 * b/x/1 returned absent; possible: cid 13 (1281 B)" — acknowledged writes
 * lost = 1, after isolate(n1, routes only), heal(), delete("b/x/1") with
 * killServer(n3), put("b/x/1", 1281 B) acknowledged, restartServer(). A
 * final GET through a stale leader (GET/HEAD still read a key's head with a
 * plain leader read then; fixed since) would look like this; so would a
 * real loss. Not settled. The whole seed also once ran past the test's 480 s:
 * its fifth run isolated n1's routes while the actors and the SDK stayed
 * connected to n1; n2 and n3 elected n2 meta leader 4 s later and served
 * JetStream on (their logs, copied during the run), but nothing worked
 * through n1 — nats.js keeps a healthy connection to a server cut off from
 * its peers — and every later command waited out its deadline. The model
 * test now gives a run 150 s of commands in CI (Budget.runMs), and the whole
 * seed then passed in 269 s (lost = 0). That a client of a cut-off server
 * stayed on it was an availability gap of its own, closed since: clients
 * given more than one server leave one through which JetStream stays
 * unavailable (src/connect.ts, watchJetStream; test/cluster/cutoff.test.ts:
 * a put succeeds again ~18 s after the cut, never without it).
 *
 * NEW, NOT REPRODUCED ON REPLAY — a direct-upload part refused as
 * InvalidDirectUpload with "0 chunks stored" (put path: src/store/claim.ts,
 * verifyClaim; not this branch's area). `npm test` budget,
 * SHOAL_SEED=890430204 SHOAL_PATH=4 (replayPath "ADABAFAGABACACBDACI:qqqA"),
 * 34 commands, the last ones:
 *     …, killActor(storage-2), put("c", 1032 B), list(prefix "b/", …),
 *     list(prefix "a/", …), put("dd", 2540 B), put("a/1", 223 B),
 *     multipart("a/2", parts 5242880 B + 2154 B)
 *   → UploadPart 1 (5 MiB, which the SDK writes itself) failed with
 *     "the upload's chunks do not match its claim: 0 chunks stored;
 *     5242880 bytes in chunks of 1047552 take 6", a definite error, with
 *     no fault in progress but storage-2 down. One replay (same seed and
 *     path) passed. The soak of the 2 December afternoon met it again
 *     (SHOAL_SOAK=1 SHOAL_SEED=911224984, run 3: "0 chunks stored; 655317
 *     bytes … take 1") with a 3 s recheck of the count in place, so it was
 *     not a moment's lag. Two ways to this, both closed since: the count is
 *     a stream info, a leader-only answer that a stale leader gives from its
 *     old state for as long as a cut lasts — a count short of the claim is
 *     now checked against the subject's last chunk read past the read
 *     barrier, and a stale count is retried; and any failure of the
 *     read-back removed the chunks — transient failures are now retried
 *     (src/store/claim.ts; test/integration/claim.test.ts).
 *
 * EVENTS (E2, "an acknowledged change has no event"): SHOAL_SEED=881131770
 * (replayPath "DBCACAAAAAAAEBAAAcPCEAC:VVVV": an acknowledged multipart
 * completion had no created event) and SHOAL_SOAK=1 SHOAL_SEED=879398276
 * (put("a/1", 0 B) had none, after a run that crashed the replicator). The
 * harness counted the events to read from SHOAL_EVENTS' stream info and
 * trusted the replicator consumer's info — both leader-only answers, so a
 * stale leader right after the final heal could make it read too few. The
 * harness now first waits until every server reports the same leader and
 * last sequence for the bucket's stream and SHOAL_EVENTS
 * (ShoalCluster.agreed, test/helpers/shoalcluster.ts). The soak of
 * 2 December 2026 (10 186 commands) met E2 once more, shrunk to
 * put("a", 200 B), copy("b/x/1" → "a") (SHOAL_SOAK=1 SHOAL_SEED=887495813,
 * path "3:3:1:3:5", replayPath "AEK:F"), "0 events in all", with no fault:
 * measured, a just-created events consumer reported num_pending 0 and
 * nothing delivered while the stream held the put's metadata (1 of 25 fresh
 * buckets), and the harness took that for caught up; the event arrived
 * moments later. The harness now waits until the consumer has acknowledged
 * the bucket's last metadata message. No event was lost by Shoal in any
 * case examined; the earlier seeds above are most likely this same race.
 */
import test from "ava";
import { ShoalCluster } from "../helpers/shoalcluster.ts";
import { contentBytes } from "../helpers/model.ts";
import { ShoalError } from "../../src/errors/index.ts";

// A probe, not the reproduction (that is test/cluster/stale-leader.test.ts,
// deterministic): the model test's own path to known issue 1 — cut a server
// with its clients, heal, create an upload and send its first part at once —
// with each server's view of the multipart KV logged after every heal. It
// hits the stale-leader window only sometimes (before the fix, 2 of 30
// uploads were lost in one run, 1 of 54 in another), so it runs when asked:
// SHOAL_KNOWN=1.
const reproduce = process.env["SHOAL_KNOWN"] === "1" ? test : test.skip;
reproduce("known issue 1 (SHOAL_KNOWN=1): right after one server's links are healed, an acknowledged CreateMultipartUpload is found by the next UploadPart", async (t) => {
  t.timeout(400_000);
  const sc = await ShoalCluster.start(t);
  const c = sc.client;
  const bucket = "known-mpu";
  for (let a = 0; ; a++) {
    try {
      await c.createBucket(bucket, { replicas: 3 });
      break;
    } catch (e) {
      if (a > 60 || !(e instanceof ShoalError && e.retryable)) throw e;
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
  const lost: string[] = [];
  // Stops at the first reproduction; at most 9 rounds (each server cut off three times).
  for (let round = 0; round < 9 && lost.length === 0; round++) {
    sc.isolate(round % 3, true);
    for (let i = 0; i < 5; i++) {
      await c.createMultipart(bucket, `x${i}`).catch(() => undefined);
      await c.put(bucket, `p${i}`, contentBytes(i, 2000)).catch(() => undefined);
    }
    sc.heal();
    const healedAt = Date.now();
    t.log(`round ${round} healed; views: ${await views(sc)}`);
    for (let i = 0; i < 6; i++) {
      let uploadId: string;
      try {
        uploadId = (await c.createMultipart(bucket, "k")).uploadId;
      } catch {
        continue; // not acknowledged: nothing to check
      }
      try {
        await c.uploadPart(bucket, "k", uploadId, 1, contentBytes(99, 1000));
      } catch (e) {
        if (e instanceof ShoalError && e.code === "NoSuchUpload") {
          lost.push(`round ${round} (n${(round % 3) + 1} healed): upload ${uploadId}`);
          t.log(`LOST ${uploadId} ${Date.now() - healedAt} ms after heal; views: ${await views(sc)}`);
        }
      }
    }
    await sc.waitWhole();
  }
  t.deepEqual(lost, [], "every acknowledged upload is found by the next UploadPart");
});


/** Each server's own view of the multipart KV stream: leader, last sequence (diagnostics). */
async function views(sc: ShoalCluster): Promise<string> {
  const out: string[] = [];
  for (const s of sc.servers) {
    try {
      const j = await s.monitor<{ account_details?: Array<{ stream_detail?: Array<{ name: string; cluster?: { leader?: string }; state?: { last_seq: number } }> }> }>("/jsz?accounts=true&streams=true");
      const d = (j.account_details ?? []).flatMap((a) => a.stream_detail ?? []).find((x) => x.name === "KV_shoal_multipart");
      out.push(`${s.name}: leader ${d?.cluster?.leader ?? "?"} last ${d?.state?.last_seq ?? "?"}`);
    } catch (e) {
      out.push(`${s.name}: ${String(e)}`);
    }
  }
  return out.join("; ");
}
