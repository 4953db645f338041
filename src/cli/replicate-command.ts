/**
 * `shoal replicate add <source> <target> [--target-nats URL --target-user U --target-pass P | --target-creds F]`
 * `shoal replicate ls | rm <id> | status | scrub <id>` — bucket replication rules
 * (KV shoal_replication), applied by the replicator actors. --json for scripts.
 */
import { ShoalClient, type ReplicationTarget } from "../client/index.ts";
import { ShoalError } from "../errors/index.ts";
import { parseFlags } from "./args.ts";
import { commonFlagsLayer, configFor, EXIT } from "./main.ts";

export async function runReplicate(args: string[], stdout: NodeJS.WritableStream): Promise<number> {
  const { values, positionals } = parseFlags(
    args,
    { "target-nats": { type: "string" }, "target-user": { type: "string" }, "target-pass": { type: "string" }, "target-creds": { type: "string" } },
    true,
  );
  const [sub, ...rest] = positionals;
  const out = (human: string, data: unknown) => stdout.write(values.json ? `${JSON.stringify(data)}\n` : `${human}\n`);
  const client = await ShoalClient.connect(configFor(values, commonFlagsLayer(values)).nats);
  try {
    switch (sub) {
      case "add": {
        const [source, target] = rest;
        if (!source || !target || rest.length > 2) throw new ShoalError("InvalidArgument", "usage: shoal replicate add <source-bucket> <target-bucket> [--target-nats URL …]");
        const t: ReplicationTarget = { bucket: target };
        if (values["target-nats"]) t.servers = values["target-nats"].split(",").map((s) => s.trim());
        if (values["target-user"]) t.user = values["target-user"];
        if (values["target-pass"]) t.pass = values["target-pass"];
        if (values["target-creds"]) t.creds = values["target-creds"];
        const rule = await client.addReplication(source, t);
        out(`rule ${rule.id}: ${rule.source} -> ${rule.target.bucket}${t.servers ? ` on ${t.servers.join(",")}` : ""}`, rule);
        return EXIT.ok;
      }
      case "ls": {
        const rules = await client.listReplications();
        out(rules.map((r) => `${r.id}  ${r.source} -> ${r.target.bucket}${r.target.servers?.length ? ` on ${r.target.servers.join(",")}` : ""}  (since ${r.created})`).join("\n") || "no replication rules", rules);
        return EXIT.ok;
      }
      case "rm": {
        if (!rest[0]) throw new ShoalError("InvalidArgument", "usage: shoal replicate rm <id>");
        const r = await client.removeReplication(rest[0]);
        out(r.removed ? `removed ${rest[0]}` : `no rule ${rest[0]}`, r);
        return r.removed ? EXIT.ok : EXIT.notFound;
      }
      case "status": {
        const st = await client.replicationStatus();
        out(
          st.map((r) => `${r.id}  ${r.source} -> ${r.target.bucket}  behind: ${r.behind} changes, ${r.secondsBehind.toFixed(1)} s  applied: ${r.status?.applied ?? 0}${r.status?.lastError ? `  last error: ${r.status.lastError}` : ""}`).join("\n") || "no replication rules",
          st.map(({ target, ...r }) => ({ ...r, target: { bucket: target.bucket, servers: target.servers } })),
        );
        return EXIT.ok;
      }
      case "scrub": {
        if (!rest[0]) throw new ShoalError("InvalidArgument", "usage: shoal replicate scrub <id>");
        const r = await client.scrubReplication(rest[0]);
        out(`checked ${r.checked}, same ${r.same}, copied ${r.copied}, deleted ${r.deleted}, extra (left alone) ${r.extra}`, r);
        return EXIT.ok;
      }
      default:
        throw new ShoalError("InvalidArgument", "usage: shoal replicate add|ls|rm|status|scrub …");
    }
  } finally {
    await client.close();
  }
}
