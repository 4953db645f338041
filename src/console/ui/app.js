// The Shoal console in the browser: Preact components written with htm
// (tagged templates, so no build step). Everything talks to the console's own
// /api on the same origin; the session lives in an HttpOnly cookie and every
// state-changing request carries the session's CSRF token.
import { h, render } from "preact";
import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import htm from "htm";

const html = htm.bind(h);

// --- helpers -------------------------------------------------------------------------------

const PART_SIZE = 8 * 1024 * 1024; // files larger than one part go in parts (multipart upload)
const FILES_AT_ONCE = 3;
const PARTS_AT_ONCE = 2;
const PAGE = 200;

export class ApiError extends Error {
  constructor(status, body) {
    const e = (body && body.error) || {};
    super(e.message || `The console answered ${status}.`);
    this.status = status;
    this.code = e.code || "Unknown";
    this.hint = e.hint || (status >= 500 ? "Retry in a moment." : "Check what you entered and try again.");
  }
}

let csrfToken = "";
let onSessionLost = () => {};

async function api(method, path, { json, query } = {}) {
  const url = query ? `${path}?${new URLSearchParams(query)}` : path;
  const headers = {};
  if (method !== "GET") headers["X-CSRF-Token"] = csrfToken;
  if (json !== undefined) headers["Content-Type"] = "application/json";
  let res;
  try {
    res = await fetch(url, { method, headers, credentials: "same-origin", body: json === undefined ? undefined : JSON.stringify(json) });
  } catch {
    throw Object.assign(new ApiError(0, { error: { code: "NetworkError", message: "The console could not be reached.", hint: "Check that shoal is still running, then retry." } }));
  }
  const body = res.headers.get("content-type")?.includes("json") ? await res.json().catch(() => null) : null;
  if (!res.ok) {
    const err = new ApiError(res.status, body);
    if (res.status === 401 && path !== "/api/login" && path !== "/api/session") onSessionLost(err);
    throw err;
  }
  return body;
}

/** PUT a Blob with upload progress (fetch cannot report it); abortable. */
function putBlob(url, blob, { onProgress, signal, contentType }) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("PUT", url);
    xhr.setRequestHeader("X-CSRF-Token", csrfToken);
    xhr.setRequestHeader("Content-Type", contentType || "application/octet-stream");
    xhr.upload.onprogress = (e) => onProgress?.(e.loaded);
    xhr.onload = () => {
      let body = null;
      try {
        body = JSON.parse(xhr.responseText);
      } catch {}
      if (xhr.status >= 200 && xhr.status < 300) resolve(body);
      else {
        const err = new ApiError(xhr.status, body);
        if (xhr.status === 401) onSessionLost(err);
        reject(err);
      }
    };
    xhr.onerror = () => reject(new ApiError(0, { error: { code: "NetworkError", message: "The upload was cut off.", hint: "Check the connection and upload the file again." } }));
    xhr.onabort = () => reject(new ApiError(0, { error: { code: "Cancelled", message: "Cancelled.", hint: "" } }));
    signal?.addEventListener("abort", () => xhr.abort(), { once: true });
    xhr.send(blob);
  });
}

/** PUT with retries: a part or file refused as busy (503) or cut off is sent again from the same Blob. */
async function putWithRetry(url, blob, o) {
  for (let attempt = 1; ; attempt++) {
    try {
      return await putBlob(url, blob, o);
    } catch (e) {
      const retryable = !o.signal?.aborted && (e.status === 503 || (e.status === 0 && e.code !== "Cancelled"));
      if (!retryable || attempt >= 4) throw e;
      o.onProgress?.(0);
      await new Promise((r) => setTimeout(r, 500 * 2 ** (attempt - 1)));
    }
  }
}

async function pool(items, n, fn) {
  let next = 0;
  const workers = Array.from({ length: Math.min(n, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      await fn(items[i], i);
    }
  });
  await Promise.all(workers);
}

/** Uploads one file: one PUT, or a multipart upload whose parts are slices of the File (never read whole). */
async function uploadFile(bucket, key, file, { onProgress, signal }) {
  const type = file.type || "application/octet-stream";
  const base = `/api/buckets/${encodeURIComponent(bucket)}`;
  if (file.size <= PART_SIZE) {
    return putWithRetry(`${base}/object?${new URLSearchParams({ key })}`, file, { onProgress, signal, contentType: type });
  }
  const { uploadId } = await api("POST", `${base}/uploads`, { json: { key, contentType: type } });
  const partSize = Math.max(PART_SIZE, Math.ceil(file.size / 10000));
  const count = Math.ceil(file.size / partSize);
  const loaded = new Array(count).fill(0);
  const etags = new Array(count);
  try {
    await pool([...Array(count).keys()], PARTS_AT_ONCE, async (i) => {
      if (signal.aborted) throw new ApiError(0, { error: { code: "Cancelled", message: "Cancelled." } });
      const slice = file.slice(i * partSize, Math.min(file.size, (i + 1) * partSize));
      const r = await putWithRetry(`${base}/uploads/${encodeURIComponent(uploadId)}/parts/${i + 1}?${new URLSearchParams({ key })}`, slice, {
        signal,
        onProgress: (n) => {
          loaded[i] = n;
          onProgress(loaded.reduce((a, b) => a + b, 0));
        },
      });
      etags[i] = r.etag;
    });
    return await api("POST", `${base}/uploads/${encodeURIComponent(uploadId)}/complete`, { json: { key, parts: etags.map((etag, i) => ({ partNumber: i + 1, etag })) } });
  } catch (e) {
    // cancelled or failed: nothing may stay behind
    await api("DELETE", `${base}/uploads/${encodeURIComponent(uploadId)}`, { query: { key } }).catch(() => {});
    throw e;
  }
}

const units = ["B", "KiB", "MiB", "GiB", "TiB"];
export function bytes(n) {
  if (n === null || n === undefined) return "–";
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}
const when = (iso) => (iso ? new Date(iso).toLocaleString() : "–");

function useRoute() {
  const [hash, setHash] = useState(location.hash);
  useEffect(() => {
    const f = () => setHash(location.hash);
    addEventListener("hashchange", f);
    return () => removeEventListener("hashchange", f);
  }, []);
  const parts = hash.replace(/^#\/?/, "").split("/");
  if (parts[0] === "cluster") return { page: "cluster" };
  if (parts[0] === "b" && parts[1]) return { page: "bucket", bucket: decodeURIComponent(parts[1]), prefix: parts.slice(2).map(decodeURIComponent).join("/") };
  return { page: "buckets" };
}
const bucketHref = (bucket, prefix = "") => `#/b/${encodeURIComponent(bucket)}/${prefix.split("/").map(encodeURIComponent).join("/")}`;

const FolderIcon = () => html`<svg class="icon" viewBox="0 0 20 16" aria-hidden="true" focusable="false"><path d="M1 3a2 2 0 0 1 2-2h4l2 2h8a2 2 0 0 1 2 2v8a2 2 0 0 1-2 2H3a2 2 0 0 1-2-2z" /></svg>`;

// --- pieces --------------------------------------------------------------------------------

function ErrorBox({ error, onClose }) {
  if (!error) return null;
  return html`<div class="error" role="alert">
    <p><strong>${error.message}</strong></p>
    ${error.hint ? html`<p>What to do: ${error.hint}</p>` : null}
    ${onClose ? html`<button type="button" class="link" onClick=${onClose}>Dismiss</button>` : null}
  </div>`;
}

function Modal({ title, onClose, children }) {
  const ref = useRef(null);
  useEffect(() => {
    const d = ref.current;
    if (d && !d.open) d.showModal();
    const cancel = (e) => {
      e.preventDefault();
      onClose();
    };
    d?.addEventListener("cancel", cancel);
    return () => d?.removeEventListener("cancel", cancel);
  }, []);
  return html`<dialog ref=${ref} aria-label=${title} class="modal">
    <h2>${title}</h2>
    ${children}
  </dialog>`;
}

// --- login ---------------------------------------------------------------------------------

function Login({ onLogin, reason }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(reason);
  const submit = async (e) => {
    e.preventDefault();
    const form = new FormData(e.target);
    setBusy(true);
    setError(null);
    try {
      const s = await api("POST", "/api/login", { json: { accessKey: form.get("accessKey"), secretKey: form.get("secretKey") } });
      onLogin(s);
    } catch (err) {
      setError(err);
      e.target.elements.secretKey.value = "";
      e.target.elements.secretKey.focus();
    } finally {
      setBusy(false);
    }
  };
  return html`<main class="login">
    <form onSubmit=${submit} aria-labelledby="login-title">
      <h1 id="login-title"><img src="/favicon.svg" alt="" width="28" height="28" /> Shoal console</h1>
      <p class="muted">Log in with an S3 access key and secret key (<code>shoal dev</code> prints them when it starts).</p>
      <label for="accessKey">Access key</label>
      <input id="accessKey" name="accessKey" autocomplete="username" required autofocus spellcheck="false" />
      <label for="secretKey">Secret key</label>
      <input id="secretKey" name="secretKey" type="password" autocomplete="current-password" required />
      <${ErrorBox} error=${error} />
      <button type="submit" disabled=${busy}>${busy ? "Checking…" : "Log in"}</button>
    </form>
  </main>`;
}

// --- buckets -------------------------------------------------------------------------------

function Buckets() {
  const [list, setList] = useState(null);
  const [error, setError] = useState(null);
  const [deleting, setDeleting] = useState(null);
  const [busy, setBusy] = useState(false);
  const load = useCallback(async () => {
    try {
      setList((await api("GET", "/api/buckets")).buckets);
    } catch (e) {
      setError(e);
    }
  }, []);
  useEffect(() => void load(), [load]);
  const create = async (e) => {
    e.preventDefault();
    const f = new FormData(e.target);
    setBusy(true);
    setError(null);
    try {
      await api("POST", "/api/buckets", { json: { name: String(f.get("name")).trim(), replicas: Number(f.get("replicas")) } });
      e.target.reset();
      await load();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return html`<section aria-labelledby="buckets-title">
    <h1 id="buckets-title">Buckets</h1>
    <form class="row" onSubmit=${create} aria-label="Create a bucket">
      <label for="new-bucket">New bucket name</label>
      <input id="new-bucket" name="name" required minlength="3" maxlength="63" pattern="[a-z0-9][a-z0-9.\\-]*[a-z0-9]" placeholder="photos" spellcheck="false" />
      <label for="new-replicas">Replicas</label>
      <select id="new-replicas" name="replicas">
        <option value="1">1</option><option value="3">3</option><option value="5">5</option>
      </select>
      <button type="submit" disabled=${busy}>Create bucket</button>
    </form>
    <${ErrorBox} error=${error} onClose=${() => setError(null)} />
    ${list === null
      ? html`<p class="muted">Loading…</p>`
      : list.length === 0
        ? html`<p class="muted">No buckets yet: create one above.</p>`
        : html`<div class="scroll"><table>
            <thead><tr><th scope="col">Name</th><th scope="col" class="num">Objects</th><th scope="col" class="num">Size</th><th scope="col" class="num">Replicas</th><th scope="col" class="wide">Created</th><th scope="col"><span class="sr">Actions</span></th></tr></thead>
            <tbody>${list.map(
              (b) => html`<tr key=${b.name}>
                <td><a href=${bucketHref(b.name)}>${b.name}</a></td>
                <td class="num">${b.objects ?? "–"}</td>
                <td class="num">${bytes(b.bytes)}</td>
                <td class="num">${b.replicas}</td>
                <td class="wide">${when(b.created)}</td>
                <td><button type="button" class="danger small" aria-label=${`Delete bucket ${b.name}`} onClick=${() => setDeleting(b)}>Delete</button></td>
              </tr>`,
            )}</tbody>
          </table></div>`}
    ${deleting ? html`<${DeleteBucket} bucket=${deleting} onClose=${(changed) => { setDeleting(null); if (changed) load(); }} />` : null}
  </section>`;
}

function DeleteBucket({ bucket, onClose }) {
  const [typed, setTyped] = useState("");
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const nonEmpty = (bucket.objects ?? 1) > 0;
  const go = async (e) => {
    e.preventDefault();
    setBusy(true);
    try {
      await api("DELETE", `/api/buckets/${encodeURIComponent(bucket.name)}`, { json: nonEmpty ? { confirm: typed } : {} });
      onClose(true);
    } catch (err) {
      setError(err);
      setBusy(false);
    }
  };
  return html`<${Modal} title=${`Delete bucket ${bucket.name}`} onClose=${() => onClose(false)}>
    <form onSubmit=${go}>
      ${nonEmpty
        ? html`<p>This bucket holds ${bucket.objects ?? "some"} objects (${bytes(bucket.bytes)}). Deleting it deletes them all, for good.</p>
            <label for="confirm-name">Type <strong>${bucket.name}</strong> to confirm</label>
            <input id="confirm-name" value=${typed} onInput=${(e) => setTyped(e.target.value)} autocomplete="off" spellcheck="false" autofocus />`
        : html`<p>The bucket is empty.</p>`}
      <${ErrorBox} error=${error} />
      <div class="row end">
        <button type="button" class="secondary" onClick=${() => onClose(false)}>Cancel</button>
        <button type="submit" class="danger" disabled=${busy || (nonEmpty && typed !== bucket.name)}>Delete bucket</button>
      </div>
    </form>
  <//>`;
}

// --- object browser ------------------------------------------------------------------------

function Breadcrumbs({ bucket, prefix }) {
  const segs = prefix ? prefix.replace(/\/$/, "").split("/") : [];
  return html`<nav aria-label="Breadcrumbs" class="crumbs">
    <a href="#/buckets">Buckets</a><span aria-hidden="true">/</span>
    <a href=${bucketHref(bucket)} aria-current=${segs.length === 0 ? "page" : undefined}>${bucket}</a>
    ${segs.map((s, i) => html`<span aria-hidden="true">/</span><a href=${bucketHref(bucket, segs.slice(0, i + 1).join("/") + "/")} aria-current=${i === segs.length - 1 ? "page" : undefined}>${s}</a>`)}
  </nav>`;
}

function SortHeader({ label, field, sort, setSort, className }) {
  const active = sort.field === field;
  return html`<th scope="col" class=${className} aria-sort=${active ? (sort.dir > 0 ? "ascending" : "descending") : "none"}>
    <button type="button" class="link" onClick=${() => setSort({ field, dir: active ? -sort.dir : 1 })}>${label}${active ? (sort.dir > 0 ? " ▲" : " ▼") : ""}</button>
  </th>`;
}

function Browser({ bucket, prefix }) {
  const [page, setPage] = useState(null);
  const [tokens, setTokens] = useState([null]); // continuation token of each page seen
  const [search, setSearch] = useState("");
  // What is typed in the search box, kept in state as it is typed: a render
  // for any other reason (a listing that answers meanwhile) would otherwise
  // put the box back to the last submitted search and lose the typing.
  const [draft, setDraft] = useState("");
  const [sort, setSort] = useState({ field: "name", dir: 1 });
  const [selected, setSelected] = useState(new Set());
  const [detail, setDetail] = useState(null);
  const [error, setError] = useState(null);
  const [uploads, setUploads] = useState([]);
  const [dragging, setDragging] = useState(false);
  const [ms, setMs] = useState(null);
  const fileInput = useRef(null);
  const folderInput = useRef(null);
  const pageIndex = tokens.length - 1;

  // Only the newest listing is shown: an older request (another folder, an
  // earlier search) that answers late must not overwrite a newer answer.
  const latest = useRef(0);
  const load = useCallback(async (token) => {
    const n = ++latest.current;
    setError(null);
    const t0 = performance.now();
    try {
      const p = await api("GET", `/api/buckets/${encodeURIComponent(bucket)}/objects`, { query: { prefix: prefix + search, delimiter: "/", max: String(PAGE), ...(token ? { token } : {}) } });
      if (n !== latest.current) return;
      setPage(p);
      setMs(Math.round(performance.now() - t0));
      setSelected(new Set());
    } catch (e) {
      if (n !== latest.current) return;
      setError(e);
      setPage({ objects: [], prefixes: [], next: null });
    }
  }, [bucket, prefix, search]);

  useEffect(() => {
    setTokens([null]);
    setDetail(null);
    void load(null);
  }, [load]);

  const refresh = () => load(tokens[tokens.length - 1]);
  const nextPage = () => {
    setTokens([...tokens, page.next]);
    void load(page.next);
  };
  const prevPage = () => {
    const t = tokens.slice(0, -1);
    setTokens(t);
    void load(t[t.length - 1]);
  };

  const cmp = (a, b) => {
    const f = sort.field;
    const x = f === "size" ? a.size : f === "mtime" ? a.mtime : a.key;
    const y = f === "size" ? b.size : f === "mtime" ? b.mtime : b.key;
    return (x < y ? -1 : x > y ? 1 : 0) * sort.dir;
  };
  const objects = page ? [...page.objects].sort(cmp) : [];
  const folders = page ? [...page.prefixes].sort((a, b) => (a < b ? -1 : 1) * (sort.field === "name" ? sort.dir : 1)) : [];

  const toggle = (key) => {
    const s = new Set(selected);
    s.has(key) ? s.delete(key) : s.add(key);
    setSelected(s);
  };
  const removeSelected = async () => {
    if (!selected.size || !confirm(`Delete ${selected.size} object(s)? This cannot be undone.`)) return;
    try {
      const r = await api("POST", `/api/buckets/${encodeURIComponent(bucket)}/delete`, { json: { keys: [...selected] } });
      if (r.errors?.length) setError(new ApiError(500, { error: { message: `${r.errors.length} object(s) could not be deleted: ${r.errors[0].message}`, hint: "Retry the delete." } }));
      if (detail && selected.has(detail)) setDetail(null);
      await refresh();
    } catch (e) {
      setError(e);
    }
  };

  // --- uploads
  const startUploads = (files) => {
    const items = files.map(({ file, path }) => ({ id: `${Date.now()}-${Math.random()}`, key: prefix + path, file, size: file.size, loaded: 0, state: "waiting", error: null, ac: new AbortController() }));
    setUploads((u) => [...items, ...u]);
    const patch = (id, p) => setUploads((u) => u.map((x) => (x.id === id ? { ...x, ...p } : x)));
    void pool(items, FILES_AT_ONCE, async (it) => {
      if (it.ac.signal.aborted) return;
      patch(it.id, { state: "uploading" });
      try {
        await uploadFile(bucket, it.key, it.file, { signal: it.ac.signal, onProgress: (n) => patch(it.id, { loaded: Math.min(n, it.size) }) });
        patch(it.id, { state: "done", loaded: it.size });
      } catch (e) {
        patch(it.id, it.ac.signal.aborted ? { state: "cancelled" } : { state: "failed", error: e });
      }
    }).then(refresh);
  };
  const cancel = (it) => {
    it.ac.abort();
    setUploads((u) => u.map((x) => (x.id === it.id && (x.state === "waiting" || x.state === "uploading") ? { ...x, state: "cancelled" } : x)));
  };
  const picked = (e, folder) => {
    const files = [...e.target.files].map((file) => ({ file, path: folder && file.webkitRelativePath ? file.webkitRelativePath : file.name }));
    e.target.value = "";
    if (files.length) startUploads(files);
  };
  const dropped = async (e) => {
    e.preventDefault();
    setDragging(false);
    const entries = [...e.dataTransfer.items].map((i) => i.webkitGetAsEntry && i.webkitGetAsEntry()).filter(Boolean);
    const out = [];
    const walk = async (entry, path) => {
      if (entry.isFile) out.push({ file: await new Promise((res, rej) => entry.file(res, rej)), path: path + entry.name });
      else if (entry.isDirectory) {
        const reader = entry.createReader();
        for (;;) {
          const batch = await new Promise((res, rej) => reader.readEntries(res, rej));
          if (!batch.length) break;
          for (const c of batch) await walk(c, `${path}${entry.name}/`);
        }
      }
    };
    if (entries.length) for (const en of entries) await walk(en, "");
    else out.push(...[...e.dataTransfer.files].map((file) => ({ file, path: file.name })));
    if (out.length) startUploads(out);
  };

  const name = (key) => key.slice(prefix.length);
  return html`<section aria-labelledby="browser-title"
      class=${dragging ? "dropzone dragging" : "dropzone"}
      onDragOver=${(e) => { e.preventDefault(); setDragging(true); }}
      onDragLeave=${(e) => { if (e.currentTarget === e.target) setDragging(false); }}
      onDrop=${dropped}>
    <h1 id="browser-title" class="sr">Objects in ${bucket}</h1>
    <${Breadcrumbs} bucket=${bucket} prefix=${prefix} />
    <div class="row toolbar">
      <label for="search" class="sr">Search by prefix</label>
      <input id="search" type="search" placeholder=${`Search in ${prefix || bucket + "/"} by prefix`} value=${draft}
        onInput=${(e) => setDraft(e.target.value)}
        onKeyDown=${(e) => { if (e.key === "Enter") setSearch(e.target.value); }}
        onChange=${(e) => setSearch(e.target.value)} spellcheck="false" />
      <button type="button" onClick=${() => fileInput.current.click()}>Upload files</button>
      <button type="button" onClick=${() => folderInput.current.click()}>Upload folder</button>
      <input ref=${fileInput} type="file" multiple hidden aria-label="Choose files to upload" onChange=${(e) => picked(e, false)} />
      <input ref=${folderInput} type="file" multiple webkitdirectory hidden aria-label="Choose a folder to upload" onChange=${(e) => picked(e, true)} />
      <button type="button" class="danger" disabled=${!selected.size} onClick=${removeSelected}>Delete selected (${selected.size})</button>
      <button type="button" class="secondary" onClick=${refresh}>Refresh</button>
    </div>
    <p class="muted hint">Drop files or folders anywhere here to upload them into <code>${bucket}/${prefix}</code>.</p>
    <${Uploads} uploads=${uploads} cancel=${cancel} clear=${() => setUploads((u) => u.filter((x) => x.state === "uploading" || x.state === "waiting"))} />
    <${ErrorBox} error=${error} onClose=${() => setError(null)} />
    <div class="split">
      <div class="scroll listing">
        <table aria-label=${`Objects in ${bucket}/${prefix}`}>
          <thead><tr>
            <th scope="col"><span class="sr">Select</span></th>
            <${SortHeader} label="Name" field="name" sort=${sort} setSort=${setSort} />
            <${SortHeader} label="Size" field="size" sort=${sort} setSort=${setSort} className="num" />
            <${SortHeader} label="Modified" field="mtime" sort=${sort} setSort=${setSort} className="wide" />
          </tr></thead>
          <tbody>
            ${folders.map((p) => html`<tr key=${"p:" + p}><td></td><td colspan="3"><a class="folder" href=${bucketHref(bucket, p)}><${FolderIcon} />${name(p)}</a></td></tr>`)}
            ${objects.map((o) => html`<tr key=${o.key} class=${detail === o.key ? "current" : ""}>
              <td><input type="checkbox" aria-label=${`Select ${name(o.key)}`} checked=${selected.has(o.key)} onChange=${() => toggle(o.key)} /></td>
              <td><button type="button" class="link" onClick=${() => setDetail(o.key)}>${name(o.key)}</button></td>
              <td class="num">${bytes(o.size)}</td>
              <td class="wide">${when(o.mtime)}</td>
            </tr>`)}
            ${page && !folders.length && !objects.length ? html`<tr><td colspan="4" class="muted">${search ? `Nothing starts with “${prefix}${search}”.` : "This folder is empty: upload files, or drop them here."}</td></tr>` : null}
            ${page === null ? html`<tr><td colspan="4" class="muted">Loading…</td></tr>` : null}
          </tbody>
        </table>
        <div class="row pager">
          <button type="button" class="secondary" disabled=${pageIndex === 0} onClick=${prevPage}>Previous page</button>
          <span class="muted">Page ${pageIndex + 1}${ms !== null ? ` · ${ms} ms` : ""}</span>
          <button type="button" class="secondary" disabled=${!page?.next} onClick=${nextPage}>Next page</button>
        </div>
      </div>
      ${detail ? html`<${Details} bucket=${bucket} objectKey=${detail} onClose=${() => setDetail(null)} />` : null}
    </div>
  </section>`;
}

function Uploads({ uploads, cancel, clear }) {
  if (!uploads.length) return null;
  const active = uploads.filter((u) => u.state === "uploading" || u.state === "waiting").length;
  return html`<section class="uploads" aria-label="Uploads">
    <div class="row"><h2>Uploads${active ? ` (${active} running)` : ""}</h2>${!active ? html`<button type="button" class="link" onClick=${clear}>Clear finished</button>` : null}</div>
    <ul>${uploads.map((u) => html`<li key=${u.id} class=${`upload ${u.state}`} data-key=${u.key}>
      <span class="name">${u.key}</span>
      <progress max=${u.size || 1} value=${u.size ? u.loaded : u.state === "done" ? 1 : 0} aria-label=${`Upload progress of ${u.key}`}></progress>
      <span class="state">${u.state === "uploading" ? `${Math.floor((100 * u.loaded) / (u.size || 1))}%` : u.state}</span>
      ${u.state === "uploading" || u.state === "waiting" ? html`<button type="button" class="small secondary" aria-label=${`Cancel upload of ${u.key}`} onClick=${() => cancel(u)}>Cancel</button>` : null}
      ${u.error ? html`<span class="err" role="alert">${u.error.message} ${u.error.hint}</span>` : null}
    </li>`)}</ul>
  </section>`;
}

const EXPIRIES = [
  [900, "15 minutes"],
  [3600, "1 hour"],
  [86400, "1 day"],
  [7 * 86400, "7 days"],
];

function Details({ bucket, objectKey, onClose }) {
  const [info, setInfo] = useState(null);
  const [error, setError] = useState(null);
  const [text, setText] = useState(null);
  const [link, setLink] = useState(null);
  const [copied, setCopied] = useState(false);
  const base = `/api/buckets/${encodeURIComponent(bucket)}`;
  const dl = (extra = {}) => `${base}/download?${new URLSearchParams({ key: objectKey, ...extra })}`;
  useEffect(() => {
    setInfo(null);
    setText(null);
    setLink(null);
    setError(null);
    api("GET", `${base}/object`, { query: { key: objectKey } })
      .then(async (i) => {
        setInfo(i);
        if (i.previewable && !i.contentType.startsWith("image/")) {
          const r = await fetch(dl({ inline: "1", ...(i.size > 65536 ? { range: "bytes=0-65535" } : {}) }), { credentials: "same-origin" });
          if (r.ok) setText(await r.text());
        }
      })
      .catch(setError);
  }, [bucket, objectKey]);
  const share = async (e) => {
    e.preventDefault();
    setCopied(false);
    try {
      setLink(await api("POST", `${base}/share`, { json: { key: objectKey, expiresIn: Number(new FormData(e.target).get("expiry")) } }));
    } catch (err) {
      setError(err);
    }
  };
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(link.url);
      setCopied(true);
    } catch {
      document.getElementById("share-url")?.select();
      setCopied(document.execCommand?.("copy") ?? false);
    }
  };
  const name = objectKey.slice(objectKey.lastIndexOf("/") + 1);
  return html`<aside class="details" aria-label=${`Details of ${name}`}>
    <div class="row"><h2>${name}</h2><button type="button" class="link" onClick=${onClose} aria-label="Close details">Close</button></div>
    <${ErrorBox} error=${error} />
    ${info
      ? html`<dl>
            <dt>Key</dt><dd><code>${info.key}</code></dd>
            <dt>Size</dt><dd>${bytes(info.size)} (${info.size} bytes)</dd>
            <dt>ETag</dt><dd><code>${info.etag}</code></dd>
            <dt>Content type</dt><dd>${info.contentType}</dd>
            <dt>Modified</dt><dd>${when(info.mtime)}</dd>
            <dt>Metadata</dt><dd>${Object.keys(info.metadata).length ? html`<ul class="meta">${Object.entries(info.metadata).map(([k, v]) => html`<li><code>${k}</code>: ${v}</li>`)}</ul>` : "none"}</dd>
          </dl>
          ${info.previewable && info.contentType.startsWith("image/") ? html`<img class="preview" src=${dl({ inline: "1" })} alt=${`Preview of ${name}`} />` : null}
          ${text !== null ? html`<pre class="preview" aria-label=${`Preview of ${name}`} tabindex="0">${text}${info.size > 65536 ? "\n…" : ""}</pre>` : null}
          <p><a class="button" href=${dl()} download=${name}>Download</a></p>
          <form class="share" onSubmit=${share}>
            <label for="expiry">Share link valid for</label>
            <select id="expiry" name="expiry">${EXPIRIES.map(([s, l]) => html`<option value=${s} selected=${s === 86400}>${l}</option>`)}</select>
            <button type="submit">Create share link</button>
          </form>
          ${link
            ? html`<div class="share-result">
                <label for="share-url">Share link (anyone with it can download until ${when(link.expires)})</label>
                <div class="row"><input id="share-url" readonly value=${link.url} onFocus=${(e) => e.target.select()} /><button type="button" onClick=${copy}>Copy link</button></div>
                ${copied ? html`<p class="ok" role="status">Copied to the clipboard.</p>` : null}
              </div>`
            : null}`
      : !error ? html`<p class="muted">Loading…</p>` : null}
  </aside>`;
}

// --- cluster -------------------------------------------------------------------------------

function Cluster() {
  const [data, setData] = useState(null);
  const [error, setError] = useState(null);
  const [events, setEvents] = useState([]);
  const [live, setLive] = useState("connecting");
  useEffect(() => {
    let stop = false;
    let timer;
    const tick = async () => {
      try {
        setData(await api("GET", "/api/cluster"));
        setError(null);
      } catch (e) {
        setError(e);
      }
      if (!stop) timer = setTimeout(tick, 2000);
    };
    void tick();
    return () => {
      stop = true;
      clearTimeout(timer);
    };
  }, []);
  useEffect(() => {
    const es = new EventSource("/api/events");
    es.onopen = () => setLive("live");
    es.onmessage = (m) => setEvents((l) => [JSON.parse(m.data), ...l].slice(0, 50));
    es.addEventListener("failure", (m) => setLive(`unavailable: ${JSON.parse(m.data).message}`));
    es.onerror = () => setLive((s) => (s.startsWith("unavailable") ? s : "reconnecting…"));
    return () => es.close();
  }, []);
  const hv = data?.health;
  return html`<section aria-labelledby="cluster-title">
    <h1 id="cluster-title">Cluster ${hv ? html`<span class=${hv.healthy ? "badge ok" : "badge bad"}>${hv.healthy ? "healthy" : "not healthy"}</span>` : null}</h1>
    <p class="muted">Refreshes every 2 s${data ? ` · as of ${when(hv?.time ?? data.time)} · Shoal ${data.version}` : ""}${hv?.metaLeader !== undefined ? ` · JetStream meta leader: ${hv.metaLeader ?? "none"}` : ""}</p>
    <${ErrorBox} error=${error} />
    ${hv && Date.parse(data.time) - Date.parse(hv.time) > 10_000
      ? html`<div class="error" role="status"><p><strong>This view is ${Math.round((Date.parse(data.time) - Date.parse(hv.time)) / 1000)} s old: the health-monitor has not refreshed it.</strong></p><p>What to do: check that a health-monitor is running and can reach the NATS servers (<code>shoal status</code>).</p></div>`
      : null}
    ${data?.healthError ? html`<${ErrorBox} error=${{ message: data.healthError.message, hint: "Start a health-monitor (shoal dev runs one; in production: shoal start --actors health-monitor)." }} />` : null}
    ${hv
      ? html`<div class="grid">
          <section aria-labelledby="servers-title" class="card wide-card">
            <h2 id="servers-title">Servers</h2>
            <div class="scroll"><table aria-label="Servers">
              <thead><tr><th scope="col">Server</th><th scope="col">State</th><th scope="col">Version</th><th scope="col">Storage used / limit</th></tr></thead>
              <tbody>${hv.servers.map((s) => html`<tr key=${s.name} data-server=${s.name}>
                <td>${s.name}</td>
                <td><span class=${s.up ? "badge ok" : "badge bad"}>${s.up ? "up" : "DOWN"}</span></td>
                <td>${s.version ?? "–"}</td>
                <td>${!s.up ? "–" : html`${bytes(s.storage)} / ${s.maxStorage ? bytes(s.maxStorage) : "no limit"}`}${s.up && s.maxStorage && s.storage !== undefined ? html` <meter min="0" max=${s.maxStorage} value=${s.storage} aria-label=${`Storage of ${s.name}`}></meter>` : null}</td>
              </tr>`)}</tbody>
            </table></div>
          </section>
          <section aria-labelledby="alerts-title" class="card">
            <h2 id="alerts-title">Open alerts</h2>
            ${hv.alerts.length
              ? html`<ul class="alerts">${hv.alerts.map((a) => html`<li key=${a.id} class=${`alert ${a.severity}`}><strong>${a.code}</strong> <span class="badge">${a.severity}</span><br />${a.message}<br /><span class="muted">since ${when(a.since)}</span></li>`)}</ul>`
              : html`<p class="muted">No open alerts.</p>`}
          </section>
          <section aria-labelledby="streams-title" class="card">
            <h2 id="streams-title">Under-replicated streams</h2>
            ${hv.underReplicated.length
              ? html`<ul>${hv.streams.filter((s) => !s.healthy).map((s) => html`<li key=${s.name}><code>${s.name}</code>: ${s.current ?? "?"} of ${s.replicas} replicas current, leader ${s.leader ?? "none"}</li>`)}</ul>`
              : hv.streams.length
                ? html`<p class="muted">All ${hv.streams.length} streams are fully replicated.</p>`
                : html`<p class="muted">No stream information right now (the health-monitor could not list them; it retries every check).</p>`}
          </section>
          <section aria-labelledby="actors-title" class="card">
            <h2 id="actors-title">Actors</h2>
            <table aria-label="Actors per kind"><thead><tr><th scope="col">Kind</th><th scope="col" class="num">Live</th></tr></thead>
              <tbody>${hv.actors.map((a) => html`<tr key=${a.kind}><td>${a.kind}</td><td class="num"><span class=${a.live ? "" : "badge bad"}>${a.live}</span></td></tr>`)}</tbody></table>
          </section>
          <section aria-labelledby="rebalance-title" class="card">
            <h2 id="rebalance-title">Rebalance and repair</h2>
            ${data.rebalancer ? html`<${Rebalancer} status=${data.rebalancer} />` : html`<p class="muted">No rebalancer answers: nothing to show (start one with <code>shoal start --actors rebalancer</code> where it exists).</p>`}
          </section>
        </div>`
      : null}
    <section aria-labelledby="events-title" class="card">
      <h2 id="events-title">Live object changes <span class="muted small-text">(${live})</span></h2>
      ${events.length
        ? html`<ol class="events" aria-live="polite">${events.map((e) => html`<li key=${e.seq}><span class="muted">${new Date(e.eventTime).toLocaleTimeString()}</span> <span class=${e.eventName.includes("Removed") ? "badge bad" : "badge ok"}>${e.eventName.includes("Removed") ? "deleted" : "created"}</span> <code>${e.bucket}/${e.key}</code>${e.size ? ` (${bytes(e.size)})` : ""}</li>`)}</ol>`
        : html`<p class="muted">Waiting for changes: upload or delete something.</p>`}
    </section>
  </section>`;
}

function Rebalancer({ status }) {
  const plans = Array.isArray(status.plans) ? status.plans : Array.isArray(status.moves) ? status.moves : null;
  const num = (k) => (typeof status[k] === "number" ? status[k] : null);
  const done = num("done") ?? num("completed") ?? num("moved");
  const total = num("total") ?? num("planned");
  return html`<div>
    ${status.state || status.phase ? html`<p>State: <strong>${String(status.state ?? status.phase)}</strong></p>` : null}
    ${done !== null && total ? html`<p><progress max=${total} value=${done} aria-label="Rebalance progress"></progress> ${done} / ${total}</p>` : null}
    ${plans ? html`<p>${plans.length} plan(s) or move(s) in progress.</p>` : null}
    <details><summary>Raw status</summary><pre>${JSON.stringify(status, null, 2)}</pre></details>
  </div>`;
}

// --- the shell -----------------------------------------------------------------------------

function Shell({ session, onLogout }) {
  const route = useRoute();
  const logout = async () => {
    await api("POST", "/api/logout").catch(() => {});
    onLogout();
  };
  useEffect(() => {
    document.title = route.page === "cluster" ? "Cluster · Shoal" : route.page === "bucket" ? `${route.bucket}/${route.prefix} · Shoal` : "Buckets · Shoal";
  }, [route.page, route.bucket, route.prefix]);
  return html`<div class="shell">
    <a class="skip" href="#main">Skip to content</a>
    <header>
      <a class="brand" href="#/buckets"><img src="/favicon.svg" alt="" width="22" height="22" /> Shoal</a>
      <nav aria-label="Main">
        <a href="#/buckets" aria-current=${route.page !== "cluster" ? "page" : undefined}>Buckets</a>
        <a href="#/cluster" aria-current=${route.page === "cluster" ? "page" : undefined}>Cluster</a>
      </nav>
      <span class="who" title="Logged in as">${session.accessKey}</span>
      <button type="button" class="secondary small" onClick=${logout}>Log out</button>
    </header>
    <main id="main" tabindex="-1">
      ${route.page === "cluster" ? html`<${Cluster} />` : route.page === "bucket" ? html`<${Browser} key=${route.bucket} bucket=${route.bucket} prefix=${route.prefix} />` : html`<${Buckets} />`}
    </main>
  </div>`;
}

function App() {
  const [session, setSession] = useState(undefined);
  const [reason, setReason] = useState(null);
  useEffect(() => {
    onSessionLost = (err) => {
      csrfToken = "";
      setReason(err);
      setSession(null);
    };
    api("GET", "/api/session")
      .then((s) => {
        csrfToken = s.csrf;
        setSession(s);
      })
      .catch(() => setSession(null));
  }, []);
  if (session === undefined) return html`<p class="muted center">Loading…</p>`;
  if (!session)
    return html`<${Login} reason=${reason} onLogin=${(s) => {
      csrfToken = s.csrf;
      setReason(null);
      setSession(s);
    }} />`;
  return html`<${Shell} session=${session} onLogout=${() => {
    csrfToken = "";
    setSession(null);
  }} />`;
}

render(html`<${App} />`, document.getElementById("app"));
