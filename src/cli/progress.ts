/**
 * Progress bars for transfers (cli-progress: a well-kept library that handles
 * terminal widths, ETA and redraw, which we would otherwise write ourselves).
 * Shown only on a TTY and for transfers over a few MiB.
 */
import cliProgress from "cli-progress";

export const PROGRESS_MIN_BYTES = 4 * 1024 * 1024;

export function progressBar(stream: NodeJS.WritableStream, label: string, total: number | undefined): { update: (n: number) => void; stop: () => void } | undefined {
  const tty = (stream as NodeJS.WriteStream).isTTY === true;
  if (!tty || (total !== undefined && total < PROGRESS_MIN_BYTES)) return undefined;
  const bar = new cliProgress.SingleBar(
    {
      stream: stream as NodeJS.WriteStream,
      format: total === undefined ? `${label} {value} bytes` : `${label} [{bar}] {percentage}% | {value}/{total} bytes | ETA {eta_formatted}`,
      hideCursor: true,
      clearOnComplete: false,
    },
    cliProgress.Presets.shades_classic,
  );
  bar.start(total ?? 0, 0);
  return { update: (n) => bar.update(n), stop: () => bar.stop() };
}
