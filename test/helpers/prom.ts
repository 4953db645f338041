/**
 * Reads Prometheus text with Prometheus's own parser (the official Python
 * client, Debian's python3-prometheus-client: .ci/run installs it), so a
 * malformed exposition fails the test instead of being read by a parser of
 * ours. Also checks what that parser does not: every histogram's buckets are
 * cumulative and its +Inf bucket equals its count.
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Family {
  name: string;
  type: string;
  samples: Sample[];
}

const PY = `
import sys, json, math
from prometheus_client.parser import text_string_to_metric_families
out = []
for f in text_string_to_metric_families(sys.stdin.read()):
    out.append({"name": f.name, "type": f.type, "samples": [{"name": s.name, "labels": s.labels, "value": s.value if math.isfinite(s.value) else str(s.value)} for s in f.samples]})
print(json.dumps(out))
`;

const python = existsSync("/usr/bin/python3") ? "/usr/bin/python3" : "python3";

export function parseMetrics(text: string): Promise<Family[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(python, ["-c", PY], { timeout: 20_000 });
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => {
      if (code !== 0) {
        reject(new Error(/No module named 'prometheus_client'/.test(err) ? "python3-prometheus-client is missing (apt-get install python3-prometheus-client; .ci/run does)" : `not valid Prometheus text: ${err.trim().split("\n").pop()}`));
        return;
      }
      const families = (JSON.parse(out) as Array<{ name: string; type: string; samples: Array<{ name: string; labels: Record<string, string>; value: number | string }> }>).map((f) => ({
        ...f,
        samples: f.samples.map((s) => ({ ...s, value: typeof s.value === "number" ? s.value : s.value === "nan" ? NaN : s.value.startsWith("-") ? -Infinity : Infinity })),
      }));
      try {
        checkHistograms(families);
        resolve(families);
      } catch (e) {
        reject(e);
      }
    });
    child.stdin.end(text);
  });
}

function checkHistograms(families: Family[]): void {
  for (const f of families.filter((x) => x.type === "histogram")) {
    const series = new Map<string, Sample[]>();
    for (const s of f.samples.filter((x) => x.name.endsWith("_bucket"))) {
      const { le, ...rest } = s.labels;
      const k = JSON.stringify(rest);
      series.set(k, [...(series.get(k) ?? []), s]);
    }
    for (const [k, buckets] of series) {
      const sorted = [...buckets].sort((a, b) => Number(a.labels["le"]) - Number(b.labels["le"]));
      for (let i = 1; i < sorted.length; i++) if (sorted[i]!.value < sorted[i - 1]!.value) throw new Error(`${f.name}${k}: buckets are not cumulative`);
      const inf = sorted.at(-1)!;
      if (inf.labels["le"] !== "+Inf") throw new Error(`${f.name}${k}: no +Inf bucket`);
      const count = f.samples.find((s) => s.name === `${f.name}_count` && JSON.stringify(s.labels) === k);
      if (!count || count.value !== inf.value) throw new Error(`${f.name}${k}: +Inf bucket ${inf.value} != count ${count?.value}`);
    }
  }
}

/** The value of the sample `name` whose labels include `labels` (0 when there is none). */
export function value(families: Family[], name: string, labels: Record<string, string> = {}): number {
  for (const f of families) {
    for (const s of f.samples) {
      if (s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)) return s.value;
    }
  }
  return 0;
}

/** Whether a sample `name` with `labels` exists. */
export function has(families: Family[], name: string, labels: Record<string, string> = {}): boolean {
  return families.some((f) => f.samples.some((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)));
}

export async function scrape(url: string): Promise<{ families: Family[]; contentType: string }> {
  const r = await fetch(url);
  if (r.status !== 200) throw new Error(`GET ${url}: ${r.status}`);
  return { families: await parseMetrics(await r.text()), contentType: r.headers.get("content-type") ?? "" };
}
