// The file browser of one snapshot: folders from the flat file list (?dir=a/b/), and the view
// of one file (?file=path). Text is shown with line numbers and syntax highlighting
// (viewers.js; the text goes in as text first, highlighted markup replaces it when ready); an
// image (the server's Content-Type says image/) is shown as an image; any other binary file (a
// NUL byte, or bytes that are not UTF-8) is described, not dumped. Raw and Download are links to
// a blob of the bytes already fetched (the token, when there is one, went with that fetch).

import { h, mount, notice } from './dom.js';
import { api } from './api.js';
import { bytes, shortSha } from './format.js';
import { highlightInto, markdownInto } from './viewers.js';
import { codeSearch } from './codeSearch.js';

const SHOW_MAX = 512 * 1024; // bytes of text shown before cutting

// The value of `name` in this page's address as it was written (still percent-encoded) when it
// is not UTF-8, else null: URLSearchParams reads %E9 as U+FFFD, so two file names that differ
// only in such bytes would read alike.
export function rawParam(name, search = location.search) {
  for (const pair of search.replace(/^\?/, '').split('&')) {
    const eq = pair.indexOf('=');
    const [k, v] = eq < 0 ? [pair, ''] : [pair.slice(0, eq), pair.slice(eq + 1)];
    let key;
    try { key = decodeURIComponent(k.replace(/\+/g, ' ')); } catch { continue; }
    if (key !== name) continue;
    try { decodeURIComponent(v.replace(/\+/g, ' ')); return null; } catch { return v; }
  }
  return null;
}

// A percent-encoded text as its bytes (one character each), to compare two encodings of one
// name ('%e9' and '%E9', '+' as a query's space).
function rawBytes(s) {
  return s.replace(/\+/g, ' ').replace(/%([0-9a-f]{2})/gi, (_, x) => String.fromCharCode(parseInt(x, 16)));
}

// What `?file=` holds for a listing or change entry: the path for a UTF-8 name (the address it
// always had), the exact bytes (the API's path_raw, as it is: `?file=lat%E9.txt`) for one
// that is not.
export function fileParam(f) {
  return f.path_raw ? { raw: f.path_raw } : f.path;
}

// What `?dir=` holds for the folder of entry `f` (a search result too): null at the root.
export function dirParam(f) {
  const p = f.path_raw || f.path;
  const i = p.lastIndexOf('/');
  if (i < 0) return null;
  return f.path_raw ? dirValue(p.slice(0, i + 1)) : p.slice(0, i + 1);
}

// Whether entry `f` is the file `?file=` names: `raw` (rawParam) by its bytes, else by its
// path (a name that is not UTF-8 only when it is the one shown so: an address from before).
export function namesFile(f, raw, path, files) {
  if (raw !== null) return Boolean(f.path_raw) && rawBytes(f.path_raw) === rawBytes(raw);
  if (f.path !== path) return false;
  return !f.path_raw || files.filter((x) => x.path === path).length === 1;
}

// This page's address with `changes` made to its query (null or '': removed; {raw}: a value
// already percent-encoded). Every other value is written as URLSearchParams writes it; one
// that is not UTF-8 stays as it was written.
export function withQuery(query, changes) {
  const q = new URLSearchParams(query);
  const raws = new Map();
  for (const k of new Set(q.keys())) {
    const r = rawParam(k);
    if (r !== null && !(k in changes)) raws.set(k, r);
  }
  for (const [k, v] of Object.entries(changes)) {
    if (v === null || v === '') q.delete(k);
    else if (typeof v === 'object') { q.set(k, ''); raws.set(k, v.raw); }
    else q.set(k, v);
  }
  const s = [...q].map(([k, v]) => (raws.has(k) ? `${encodeURIComponent(k)}=${raws.get(k)}`
    : new URLSearchParams([[k, v]]).toString())).join('&');
  return location.pathname + (s ? `?${s}` : '');
}

// A link of the browser: it keeps the page where it is, and the link for the same folder or
// file in the new render (`key`) takes the focus.
function qlink(query, changes, key, ...children) {
  return h('a', { href: withQuery(query, changes), dataset: { route: '', stay: '', focusKey: key } }, ...children);
}

// A folder's path as ?dir= holds it: the path (ending in /) for a UTF-8 name, {raw} (its bytes
// percent-encoded, '/' kept) for one that is not. `raw` is a path_raw cut after a '/'.
function dirValue(raw) {
  try { return decodeURIComponent(raw); } catch { return { raw }; }
}

// Splits the files under `dir` into its direct sub-folders ([name, count, ?dir= value]) and
// files. A folder whose name is not UTF-8 is told apart by its bytes (the path_raw of the files
// in it: '/' is kept there, so its n-th segment is the path's), not by its name as shown.
function listing(files, dir) {
  const dirs = new Map(), here = [];
  const depth = dir.split('/').length - 1;
  for (const f of files) {
    if (!f.path.startsWith(dir)) continue;
    const rest = f.path.slice(dir.length);
    const slash = rest.indexOf('/');
    if (slash >= 0) {
      const d = rest.slice(0, slash);
      const value = f.path_raw ? dirValue(f.path_raw.split('/').slice(0, depth + 1).join('/') + '/') : dir + d + '/';
      const key = typeof value === 'object' ? `raw:${value.raw}` : value;
      const had = dirs.get(key);
      dirs.set(key, [d, (had ? had[1] : 0) + 1, value]);
    } else {
      here.push(f);
    }
  }
  return { dirs: [...dirs.values()], here };
}

export function isBinary(buf) {
  const head = buf.subarray(0, 8000);
  if (head.includes(0)) return true;
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(buf.subarray(0, Math.min(buf.length, SHOW_MAX)));
    return false;
  } catch {
    // A multi-byte character cut at the SHOW_MAX boundary is not a reason to call it binary.
    if (buf.length > SHOW_MAX) {
      try {
        new TextDecoder('utf-8', { fatal: true }).decode(buf.subarray(0, SHOW_MAX - 4));
        return false;
      } catch { /* fall through */ }
    }
    return true;
  }
}

// Blob URLs of the file on view; released when another file is shown.
let blobUrls = [];
function blobUrl(buf, type) {
  const url = URL.createObjectURL(new Blob([buf], { type }));
  blobUrls.push(url);
  return url;
}

function fileActions(path, buf, type) {
  const name = path.slice(path.lastIndexOf('/') + 1);
  // An SVG opened on its own is a document: its source is what "raw" shows.
  const rawType = type.startsWith('image/svg') ? 'text/plain; charset=utf-8' : type;
  return h('div.file-actions',
    h('a.btn.btn-small#file-raw', { href: blobUrl(buf, rawType), target: '_blank', rel: 'noopener' }, 'Raw'),
    h('a.btn.btn-small#file-download', { href: blobUrl(buf, type), download: name }, 'Download'));
}

// The text with a column of line numbers beside it; the numbers are not part of the text (a
// selection copies only the code). `line` (from ?line=, a search result) gets a band across
// the view and is scrolled to: a band laid over the text, because highlighting replaces the
// text's nodes and a line is not an element of its own.
function codeView(path, text, line) {
  const lines = text.split('\n');
  if (lines.length > 1 && lines[lines.length - 1] === '') lines.pop();
  const numbers = lines.map((_, i) => i + 1).join('\n');
  const code = h('code', text);
  const view = h('div.code-view', { tabindex: '0', 'aria-label': `Content of ${path}` },
    h('pre.line-numbers', { 'aria-hidden': 'true' }, numbers),
    h('pre.file-text', code));
  if (line >= 1 && line <= lines.length) {
    view.style.setProperty('--target-line', String(line - 1));
    view.append(h('div.line-target', { 'aria-hidden': 'true', dataset: { line: String(line) } }));
  }
  highlightInto(code, text, path).then((lang) => {
    if (lang) view.dataset.language = lang;
  }).catch(() => { /* stays plain text */ });
  return view;
}

// A markdown file is read rendered, as a forge shows it, and its source is one press away
// (Source / Rendered, a pair of toggle buttons); a search result's ?line= opens the source,
// where that line is. Relative links go to the files of the same snapshot.
function markdownView(project, at, path, text, source, line) {
  const rendered = h('div.file-markdown', { tabindex: '0', 'aria-label': `${path}, rendered` }, text);
  // A leading YAML front matter block (a memory note's title and tags) is data, not prose:
  // rendered it would be a rule and a heading "title: ...". Source shows it.
  const body = text.replace(/^---\r?\n[\s\S]*?\r?\n---\r?\n/, '');
  markdownInto(rendered, body, { notePath: path, idPrefix: 'file-md-', fileUrl: ({ path: p, dir, line: l }) => {
    const sp = new URLSearchParams();
    const folder = dir ? `${p}/` : p.slice(0, p.lastIndexOf('/') + 1);
    if (folder) sp.set('dir', folder);
    if (!dir) sp.set('file', p);
    if (l && !dir) sp.set('line', String(l));
    return `/projects/${encodeURIComponent(project)}/syncs/${at}?${sp}`;
  } });
  const toggle = (label, showRendered) => h('button.btn.btn-small', { type: 'button', 'aria-pressed': 'false',
    dataset: { mdView: showRendered ? 'rendered' : 'source' }, onclick: () => show(showRendered) }, label);
  const bRendered = toggle('Rendered', true), bSource = toggle('Source', false);
  const wrap = h('div.markdown-file', h('div.file-actions.markdown-toggle', { role: 'group', 'aria-label': 'Show' }, bRendered, bSource),
    rendered, source);
  function show(asRendered) {
    rendered.hidden = !asRendered;
    source.hidden = asRendered;
    bRendered.setAttribute('aria-pressed', String(asRendered));
    bSource.setAttribute('aria-pressed', String(!asRendered));
  }
  show(!line);
  return wrap;
}

async function fileView(box, project, at, f, maxBlob, line) {
  for (const url of blobUrls) URL.revokeObjectURL(url);
  blobUrls = [];
  const head = h('div.file-head', h('h3.path', f.path),
    h('p.muted', `${f.type === 'commit' ? 'submodule' : bytes(f.size)} · mode ${f.mode} · ${shortSha(f.sha)}`));
  if (f.type === 'commit') return mount(box, head, h('p', `A submodule at commit ${f.sha}: it has no content here.`));
  if (maxBlob && f.size > maxBlob)
    return mount(box, head, h('p', `Larger than the project's limit (${bytes(maxBlob)}): kept as metadata only.`));
  mount(box, head, h('p.muted', 'Loading…'));
  let file;
  try {
    file = await api.file(project, f, at);
  } catch (e) {
    return mount(box, head, notice('error', e.message));
  }
  const buf = file.bytes;
  if (f.mode === '120000')
    return mount(box, head, h('p', 'Symbolic link to ', h('code', new TextDecoder().decode(buf))));
  const type = file.type || 'application/octet-stream';
  head.append(fileActions(f.path, buf, type));
  if (type.startsWith('image/'))
    return mount(box, head, h('div.file-image', h('img', { src: blobUrl(buf, type), alt: f.path })));
  if (isBinary(buf))
    return mount(box, head, h('p.binary', `Binary file (${bytes(buf.length)}): not shown.`));
  const text = new TextDecoder().decode(buf.subarray(0, SHOW_MAX));
  const source = codeView(f.path, text, line);
  const cut = buf.length > SHOW_MAX ? h('p.muted', `Showing the first ${bytes(SHOW_MAX)} of ${bytes(buf.length)}.`) : null;
  if (/\.(md|markdown)$/i.test(f.path)) {
    mount(box, head, markdownView(project, at, f.path, text, source, line), cut);
    return;
  }
  mount(box, head, source, cut);
  const target = box.querySelector('.line-target');
  if (target) target.scrollIntoView({ block: 'center' });
}

export async function fileBrowser({ box, project, at, query, maxBlob, navigate }) {
  const dir = (query.get('dir') || '').replace(/^\/+/, '');
  // A folder whose name is not UTF-8: its bytes ('/' as a separator however it was written).
  const dirRaw = rawParam('dir')?.replace(/%2F/gi, '/').replace(/^\/+/, '') ?? null;
  const dirArg = dirRaw !== null ? { raw: dirRaw } : dir || null;
  const filePath = query.get('file');
  const fileRaw = rawParam('file');
  const line = Number(query.get('line')) || 0;
  const searchBox = h('div.code-search-box');
  const [files] = await Promise.all([api.files(project, at, dirArg || undefined),
    codeSearch({ box: searchBox, project, at, query, navigate, withQuery: (changes) => withQuery(query, changes) })]);
  const { dirs, here } = listing(files, dir);

  const crumbs = [qlink(query, { dir: null, file: null }, 'dir:', 'root')];
  let acc = '';
  const rawParts = dirRaw !== null ? dirRaw.split('/') : null;
  dir.split('/').filter(Boolean).forEach((part, i) => {
    acc += part + '/';
    const value = rawParts ? dirValue(rawParts.slice(0, i + 1).join('/') + '/') : acc;
    crumbs.push(' / ', qlink(query, { dir: value, file: null }, `dir:${value.raw || value}`, part));
  });
  const view = h('div.file-view');
  mount(box, searchBox,
    h('nav.crumbs.file-crumbs', { 'aria-label': 'Folder' }, crumbs),
    h('div.browser',
      h('ul.file-list', { 'aria-label': `Files in ${dir || 'the root folder'}` },
        dirs.sort((a, b) => (a[0] < b[0] ? -1 : 1)).map(([d, n, value]) => h('li.dir',
          qlink(query, { dir: value, file: null }, `dir:${value.raw || value}`, h('span.icon', { 'aria-hidden': 'true' }, '▸ '), d + '/'),
          h('span.muted', ` ${n}`))),
        here.map((f) => h('li.file', { class: filePath !== null && namesFile(f, fileRaw, filePath, files) ? 'selected' : '' },
          qlink(query, { dir: dirArg, file: fileParam(f) }, `file:${f.path_raw || f.path}`, f.path.slice(dir.length)),
          h('span.muted', ` ${f.type === 'commit' ? 'submodule' : bytes(f.size)}`))),
        !dirs.length && !here.length ? h('li.empty', 'No files.') : null),
      view));
  if (filePath) {
    const f = files.find((x) => namesFile(x, fileRaw, filePath, files));
    if (f) await fileView(view, project, at, f, maxBlob, line);
    else if (files.some((x) => x.path === filePath))
      mount(view, notice('error', 'Several files have this name once the bytes that are not UTF-8 are shown as \ufffd: pick one in the list.'));
    else mount(view, notice('error', 'That file is not in this folder of the snapshot.'));
  } else {
    mount(view, h('p.muted', 'Pick a file to see its content.'));
  }
}
