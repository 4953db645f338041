/**
 * The string literals of a JavaScript/TypeScript source, comments skipped:
 * quoted strings, and the text parts of template literals (the `${…}`
 * expressions inside are scanned as code). A small lexer, not a parser: it
 * tells a regular expression literal from a division by the token before
 * the `/`, which is enough for this code base (tested in
 * test/unit/subject-literals.test.ts).
 */
export interface Literal {
  text: string;
  line: number;
}

const REGEX_AFTER_WORDS = new Set(["return", "typeof", "instanceof", "in", "of", "new", "delete", "void", "throw", "case", "do", "else", "yield", "await"]);

export function stringLiterals(src: string): Literal[] {
  const out: Literal[] = [];
  let i = 0;
  let line = 1;
  /** The last significant token's kind: decides whether `/` starts a regex. */
  let prev: "value" | "operator" = "operator";
  /** Open template literals: the brace depth of each `${` in progress. */
  const templates: number[] = [];
  let depth = 0;

  const readTemplate = (): void => {
    // at the character after ` or after the } closing a ${
    const start = line;
    let text = "";
    while (i < src.length) {
      const c = src[i]!;
      if (c === "\\") {
        text += src.slice(i, i + 2);
        if (src[i + 1] === "\n") line++;
        i += 2;
        continue;
      }
      if (c === "`") {
        i++;
        out.push({ text, line: start });
        prev = "value";
        return;
      }
      if (c === "$" && src[i + 1] === "{") {
        i += 2;
        out.push({ text, line: start });
        templates.push(depth);
        depth++;
        prev = "operator";
        return;
      }
      if (c === "\n") line++;
      text += c;
      i++;
    }
  };

  while (i < src.length) {
    const c = src[i]!;
    const n = src[i + 1];
    if (c === "\n") {
      line++;
      i++;
      continue;
    }
    if (c === " " || c === "\t" || c === "\r") {
      i++;
      continue;
    }
    if (c === "/" && n === "/") {
      while (i < src.length && src[i] !== "\n") i++;
      continue;
    }
    if (c === "/" && n === "*") {
      const end = src.indexOf("*/", i + 2);
      const stop = end < 0 ? src.length : end + 2;
      for (let k = i; k < stop; k++) if (src[k] === "\n") line++;
      i = stop;
      continue;
    }
    if (c === "'" || c === '"') {
      const start = line;
      let text = "";
      i++;
      while (i < src.length && src[i] !== c) {
        if (src[i] === "\\") {
          text += src.slice(i, i + 2);
          i += 2;
          continue;
        }
        if (src[i] === "\n") break; // unterminated: stop at the line's end
        text += src[i];
        i++;
      }
      i++;
      out.push({ text, line: start });
      prev = "value";
      continue;
    }
    if (c === "`") {
      i++;
      readTemplate();
      continue;
    }
    if (c === "/" && prev === "operator") {
      // a regular expression literal: skipped (its text is a pattern, not a name)
      i++;
      let inClass = false;
      while (i < src.length && src[i] !== "\n") {
        const r = src[i]!;
        if (r === "\\") {
          i += 2;
          continue;
        }
        if (r === "[") inClass = true;
        else if (r === "]") inClass = false;
        else if (r === "/" && !inClass) break;
        i++;
      }
      i++;
      while (i < src.length && /[a-z]/i.test(src[i]!)) i++;
      prev = "value";
      continue;
    }
    if (c === "{") {
      depth++;
      prev = "operator";
      i++;
      continue;
    }
    if (c === "}") {
      depth--;
      i++;
      if (templates.length && templates[templates.length - 1] === depth) {
        templates.pop();
        readTemplate();
      } else prev = "operator";
      continue;
    }
    if (/[A-Za-z0-9_$]/.test(c)) {
      let w = "";
      while (i < src.length && /[A-Za-z0-9_$.]/.test(src[i]!)) {
        if (src[i] === "." && !/[0-9]/.test(w[0] ?? "")) break;
        w += src[i];
        i++;
      }
      prev = REGEX_AFTER_WORDS.has(w) ? "operator" : "value";
      continue;
    }
    prev = c === ")" || c === "]" ? "value" : "operator";
    i++;
  }
  return out;
}
