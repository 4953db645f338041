/** What a synchronous call ends with, for tests of validators: "ok", the ShoalError code it throws, or the text of anything else. */
import { ShoalError } from "../../src/errors/index.ts";

export function codeOf(f: () => unknown): string {
  try {
    f();
    return "ok";
  } catch (e) {
    return e instanceof ShoalError ? e.code : String(e);
  }
}
