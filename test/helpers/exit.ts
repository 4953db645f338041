/**
 * Loaded by ava into every test file's process (ava.config.js `require`).
 *
 * ava does not end a test file's process when its tests are done: it waits
 * for the process to exit by itself. A file that leaves a handle open (a
 * socket whose close never completed, a timer, a child's pipe) keeps its
 * process, and the whole run, waiting; ava's own timeout does not always
 * end that wait (it is not re-armed when it fires inside a test's longer
 * `t.timeout`). CI once waited so until its 90 minutes ran out.
 *
 * So, as ava's documentation advises, the process exits once its tests are
 * done; what it still held open is printed first, so that a leak is seen.
 */
import test, { registerCompletionHandler } from "ava";

/**
 * Not reported: what every test process has (its stdio, ava's IPC channel,
 * signal listeners), and timers (a race's losing timeout ends by itself).
 */
const EXPECTED = new Set(["PipeWrap", "TTYWrap", "FSReqCallback", "SignalWrap", "Timeout", "Immediate"]);

registerCompletionHandler(() => {
  const open = process.getActiveResourcesInfo().filter((r) => !EXPECTED.has(r));
  if (open.length > 0) {
    const counts = new Map<string, number>();
    for (const r of open) counts.set(r, (counts.get(r) ?? 0) + 1);
    const what = [...counts].map(([r, n]) => (n > 1 ? `${r}×${n}` : r)).join(", ");
    process.stderr.write(`test: ${test.meta.file.replace(/^.*\/test\//, "test/")} left open: ${what}; its process exits anyway\n`);
  }
  process.exit();
});
