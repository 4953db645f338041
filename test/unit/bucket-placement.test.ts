/**
 * How ensureStore names JetStream's placement refusals. A replica count the
 * cluster can never hold is the client's mistake (InvalidReplicas, 400); a
 * peer that is offline — down, or just back and not yet counted online by the
 * meta leader — is transient (ServiceUnavailable, 503, retryable). The model
 * test (test/cluster/model.test.ts) found an R3 bucket created right after a
 * server restart refused as InvalidReplicas. The errors are JetStream's own
 * API errors (as nats-server 2.15 words them), handed to ensureStore by a
 * stand-in manager: which servers are offline at the instant of a create is
 * not something a cluster test can pin down.
 */
import test from "ava";
import { JetStreamApiError, type JetStreamManager } from "@nats-io/jetstream";
import { ensureStore, storeRef } from "../../src/store/bucket.ts";
import { ShoalError } from "../../src/errors/index.ts";

function refusingManager(description: string): JetStreamManager {
  const notFound = new JetStreamApiError({ code: 404, err_code: 10059, description: "stream not found" });
  return {
    streams: {
      info: () => Promise.reject(notFound),
      add: () => Promise.reject(new JetStreamApiError({ code: 500, err_code: 10005, description })),
    },
  } as unknown as JetStreamManager;
}

async function codeOf(description: string): Promise<string> {
  try {
    await ensureStore(refusingManager(description), storeRef("placement"), 3);
    return "ok";
  } catch (e) {
    return e instanceof ShoalError ? `${e.code}:${e.retryable}` : String(e);
  }
}

test("no suitable peers because one is offline: ServiceUnavailable (retryable), not InvalidReplicas", async (t) => {
  t.is(await codeOf("no suitable peers for placement, peer offline"), "ServiceUnavailable:true");
});

test("a replica count the cluster cannot hold stays InvalidReplicas", async (t) => {
  t.is(await codeOf("insufficient resources"), "InvalidReplicas:false");
  t.is(await codeOf("replicas > 1 not supported in non-clustered mode"), "InvalidReplicas:false");
  t.is(await codeOf("no suitable peers for placement"), "InvalidReplicas:false");
});
