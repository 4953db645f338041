import type { ActorDefinition } from "../runtime/index.ts";
import { ShoalError } from "../errors/index.ts";

/** Actor kinds that exist, by name. Built in actors/index.ts, handed in by bin/shoal.js. */
export type ActorRegistry = Readonly<Record<string, ActorDefinition>>;

/** Resolves `--actors a,b` (or `all`) against the registry; unknown names are a usage error. */
export function selectActors(registry: ActorRegistry, list: string | undefined): ActorDefinition[] {
  const names = Object.keys(registry);
  if (!list) throw new ShoalError("InvalidArgument", `--actors is required (one or more of: ${names.join(", ") || "none exist yet"}, or all)`);
  const wanted = list.split(",").map((s) => s.trim()).filter(Boolean);
  if (wanted.length === 1 && wanted[0] === "all") return Object.values(registry);
  const unknown = wanted.filter((w) => !Object.hasOwn(registry, w));
  if (unknown.length > 0 || wanted.length === 0) {
    throw new ShoalError("InvalidArgument", `unknown actor ${unknown.map((u) => JSON.stringify(u)).join(", ") || "(empty list)"}; available: ${names.join(", ") || "none"}, or all`);
  }
  return [...new Set(wanted)].map((w) => registry[w]!);
}
