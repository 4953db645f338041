/**
 * S3's XML, both ways, kept deliberately small:
 * - `xml(name, children)` builds a response document (text is escaped; the
 *   S3 namespace goes on the root);
 * - `parseXml(text)` reads the few request bodies S3 has (Delete,
 *   CompleteMultipartUpload, CreateBucketConfiguration) into an element tree.
 *   It refuses DTDs and entity declarations (no expansion attacks), processing
 *   instructions other than the XML declaration, unknown entities, unbalanced
 *   tags, and documents that are too deep or have too many elements. Anything
 *   it refuses is MalformedXML (the MalformedPayload code).
 */
import { ShoalError } from "../errors/index.ts";

export const S3_NS = "http://s3.amazonaws.com/doc/2006-03-01/";

export type XmlChild = [string, XmlValue];
export type XmlValue = string | number | boolean | undefined | null | XmlChild[];

export function escapeXml(s: string): string {
  // eslint-disable-next-line no-control-regex
  // \r is escaped too: a parser would turn a literal CR (or CRLF) in text into \n
  return s.replace(/[&<>"'\u0000-\u0008\u000b-\u000d\u000e-\u001f]/g, (c) =>
    c === "&" ? "&amp;" : c === "<" ? "&lt;" : c === ">" ? "&gt;" : c === '"' ? "&quot;" : c === "'" ? "&apos;" : `&#x${c.charCodeAt(0).toString(16)};`,
  );
}

function render(name: string, v: XmlValue): string {
  if (v === undefined || v === null) return "";
  if (Array.isArray(v)) return `<${name}>${v.map(([n, c]) => render(n, c)).join("")}</${name}>`;
  return `<${name}>${escapeXml(String(v))}</${name}>`;
}

/** A whole document: `<?xml …?><Name xmlns="…">…</Name>`. */
export function xml(root: string, children: XmlChild[], ns: string = S3_NS): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<${root}${ns ? ` xmlns="${ns}"` : ""}>${children.map(([n, c]) => render(n, c)).join("")}</${root}>`;
}

export interface XmlElement {
  name: string;
  children: XmlElement[];
  text: string;
}

const bad = (why: string) => new ShoalError("MalformedPayload", `malformed XML: ${why}`);

function decodeEntities(s: string): string {
  return s.replace(/&(#x[0-9a-fA-F]{1,6}|#[0-9]{1,7}|[a-z]+);|&/g, (m, e: string | undefined) => {
    if (e === undefined) throw bad("a bare '&'");
    if (e === "amp") return "&";
    if (e === "lt") return "<";
    if (e === "gt") return ">";
    if (e === "quot") return '"';
    if (e === "apos") return "'";
    if (e.startsWith("#")) {
      const cp = e[1] === "x" ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10);
      if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) || cp === 0) throw bad("an invalid character reference");
      return String.fromCodePoint(cp);
    }
    throw bad(`the entity &${e}; is not defined`);
  });
}

/** Parses `text` (already size-limited by the caller) into its root element. */
export function parseXml(text: string, limits: { maxDepth?: number; maxElements?: number } = {}): XmlElement {
  const maxDepth = limits.maxDepth ?? 16;
  const maxElements = limits.maxElements ?? 20_000;
  let i = 0;
  let count = 0;
  const stack: XmlElement[] = [];
  let root: XmlElement | undefined;
  const skipSpace = () => {
    while (i < text.length && /\s/.test(text[i]!)) i++;
  };
  if (text.charCodeAt(0) === 0xfeff) i = 1;
  skipSpace();
  if (text.startsWith("<?xml", i)) {
    const end = text.indexOf("?>", i);
    if (end < 0) throw bad("an unterminated XML declaration");
    i = end + 2;
  }
  while (i < text.length) {
    if (text[i] !== "<") {
      const next = text.indexOf("<", i);
      const chunk = text.slice(i, next < 0 ? text.length : next);
      if (stack.length === 0) {
        if (chunk.trim() !== "") throw bad("text outside the root element");
      } else stack[stack.length - 1]!.text += decodeEntities(chunk);
      i = next < 0 ? text.length : next;
      continue;
    }
    if (text.startsWith("<!--", i)) {
      const end = text.indexOf("-->", i + 4);
      if (end < 0) throw bad("an unterminated comment");
      i = end + 3;
      continue;
    }
    if (text.startsWith("<![CDATA[", i)) {
      const end = text.indexOf("]]>", i);
      if (end < 0 || stack.length === 0) throw bad("a misplaced CDATA section");
      stack[stack.length - 1]!.text += text.slice(i + 9, end);
      i = end + 3;
      continue;
    }
    if (text.startsWith("<!", i)) throw bad("DTDs and entity declarations are not allowed");
    if (text.startsWith("<?", i)) throw bad("processing instructions are not allowed");
    if (text.startsWith("</", i)) {
      const end = text.indexOf(">", i);
      if (end < 0) throw bad("an unterminated end tag");
      const raw = text.slice(i + 2, end).trim();
      const name = raw.includes(":") ? raw.slice(raw.indexOf(":") + 1) : raw;
      const open = stack.pop();
      if (!open || open.name !== name) throw bad(`</${name.slice(0, 40)}> does not close the open element`);
      i = end + 1;
      continue;
    }
    const end = text.indexOf(">", i);
    if (end < 0) throw bad("an unterminated tag");
    let body = text.slice(i + 1, end);
    const selfClosing = body.endsWith("/");
    if (selfClosing) body = body.slice(0, -1);
    const m = /^([A-Za-z_][\w.:-]*)(\s[^]*)?$/.exec(body);
    if (!m) throw bad("a malformed tag");
    const attrs = m[2] ?? "";
    if (!/^(\s+[A-Za-z_][\w.:-]*\s*=\s*("[^"<]*"|'[^'<]*'))*\s*$/.test(attrs)) throw bad("malformed attributes");
    decodeEntities(attrs);
    const name = m[1]!.includes(":") ? m[1]!.slice(m[1]!.indexOf(":") + 1) : m[1]!;
    const el: XmlElement = { name, children: [], text: "" };
    if (++count > maxElements) throw bad("too many elements");
    if (stack.length === 0) {
      if (root) throw bad("more than one root element");
      root = el;
    } else stack[stack.length - 1]!.children.push(el);
    if (!selfClosing) {
      stack.push(el);
      if (stack.length > maxDepth) throw bad("nested too deeply");
    }
    i = end + 1;
  }
  if (stack.length > 0) throw bad(`<${stack[stack.length - 1]!.name}> is not closed`);
  if (!root) throw bad("no root element");
  return root;
}

/** Children of `el` named `name`. */
export const childrenNamed = (el: XmlElement, name: string) => el.children.filter((c) => c.name === name);
/** Text of the first child named `name`, if any. */
export const childText = (el: XmlElement, name: string) => el.children.find((c) => c.name === name)?.text;
