// The viewers' libraries and what the page does with them: syntax highlighting of a file
// (highlight.js), markdown of a memory entry (marked), and the sanitizer both go through
// (DOMPurify). The libraries are Debian's (libjs-highlight.js, libjs-marked, node-dompurify),
// embedded into the binary at build time and served from /assets/ like the page's own files;
// each is loaded once, when a view first needs it, as a classic script (they are UMD bundles
// that set a global).
//
// Safety: markdown is the one place where text from a repository becomes markup. Raw HTML in
// it is never passed on (marked's html renderer is replaced by one that escapes it, so it shows
// as text), and what marked makes goes through DOMPurify anyway (javascript: links, event
// attributes), into a DocumentFragment — never innerHTML of unsanitized text. highlight.js
// escapes the code it marks up; its output is also sanitized, down to <span class>.

const loading = new Map();

function loadScript(name, global) {
  if (!loading.has(name)) {
    loading.set(name, new Promise((resolve, reject) => {
      if (window[global]) { resolve(window[global]); return; }
      const s = document.createElement('script');
      s.src = `/assets/${name}`;
      s.onload = () => (window[global] ? resolve(window[global]) : reject(new Error(`${name} did not load`)));
      s.onerror = () => { loading.delete(name); reject(new Error(`${name} could not be loaded`)); };
      document.head.append(s);
    }));
  }
  return loading.get(name);
}

let purifier = null;
async function purify() {
  if (purifier) return purifier;
  const DOMPurify = await loadScript('purify.min.js', 'DOMPurify');
  // Links in notes open away from the page and tell the other site nothing.
  DOMPurify.addHook('afterSanitizeAttributes', (node) => {
    if (node.tagName === 'A' && node.hasAttribute('href')) {
      node.setAttribute('rel', 'noopener noreferrer nofollow');
      node.setAttribute('target', '_blank');
    }
  });
  purifier = DOMPurify;
  return purifier;
}

// ---- syntax highlighting ----

export const HIGHLIGHT_MAX = 256 * 1024; // bytes; past it a file is shown plain (and fast)

// Names highlight.js knows no extension for.
const BY_NAME = {
  makefile: 'makefile', gnumakefile: 'makefile', dockerfile: 'dockerfile', 'cmakelists.txt': 'cmake',
  'meson.build': 'python', 'meson_options.txt': 'python', '.bashrc': 'bash', '.profile': 'bash',
  '.gitignore': 'bash', 'nginx.conf': 'nginx', gemfile: 'ruby', rakefile: 'ruby', jenkinsfile: 'groovy',
};
// Extensions whose highlight.js alias is missing or means something else.
const BY_EXT = { h: 'c', mjs: 'javascript', cjs: 'javascript', tsx: 'typescript', jsx: 'javascript',
  scd: 'plaintext', txt: 'plaintext', service: 'ini', conf: 'ini', cfg: 'ini', toml: 'ini',
  svg: 'xml', bash: 'bash', zsh: 'bash', in: 'plaintext', lock: 'plaintext' };

// The highlight.js language of a path, by name or extension; null when none fits.
export function languageOf(hljs, path) {
  const base = path.slice(path.lastIndexOf('/') + 1).toLowerCase();
  if (BY_NAME[base]) return BY_NAME[base];
  const dot = base.lastIndexOf('.');
  if (dot <= 0) return null;
  const ext = base.slice(dot + 1);
  const lang = BY_EXT[ext] || ext;
  if (lang === 'plaintext') return null;
  return hljs.getLanguage(lang) ? lang : null;
}

// Highlights `text` into `code` (a <code> already showing it as plain text). Resolves to the
// language used, or null when the file stays plain (unknown language, too large, no library).
export async function highlightInto(code, text, path) {
  if (text.length > HIGHLIGHT_MAX) return null;
  const [hljs, DOMPurify] = await Promise.all([loadScript('highlight.min.js', 'hljs'), purify()]);
  const lang = languageOf(hljs, path);
  if (!lang) return null;
  const html = hljs.highlight(lang, text, true).value; // highlight.js 9: (language, code, ignore_illegals)
  const frag = DOMPurify.sanitize(html, { ALLOWED_TAGS: ['span'], ALLOWED_ATTR: ['class'],
    RETURN_DOM_FRAGMENT: true });
  code.replaceChildren(frag);
  code.classList.add('hljs', `language-${lang}`);
  return lang;
}

// ---- markdown ----

let markdown = null;
async function markdownParser() {
  if (markdown) return markdown;
  const marked = await loadScript('marked.umd.min.js', 'marked');
  const renderer = new marked.Renderer();
  // Raw HTML blocks and inline tags are shown as the text they are.
  const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
  renderer.html = (html) => esc(typeof html === 'object' && html ? html.text : html);
  markdown = (text) => marked.parse(text, { renderer, gfm: true, headerIds: false, mangle: false });
  return markdown;
}

// A note's image is not loaded: one from elsewhere is refused by the page's Content-Security-
// Policy (a console error and a broken image, and the other site would learn who reads the
// note), and a relative one names a file of the repository, not of the page. The image becomes
// its alt text, a link to its address when that is an absolute http(s) one.
function imagesAsLinks(frag) {
  for (const img of frag.querySelectorAll('img')) {
    const src = img.getAttribute('src') || '';
    const label = `image: ${img.getAttribute('alt') || src || 'no address'}`;
    let repl;
    if (/^https?:\/\//i.test(src)) {
      repl = document.createElement('a');
      repl.href = src;
      repl.rel = 'noopener noreferrer nofollow';
      repl.target = '_blank';
    } else {
      repl = document.createElement('span');
      if (src) repl.title = src;
    }
    repl.className = 'md-image';
    repl.textContent = `[${label}]`;
    img.replaceWith(repl);
  }
  return frag;
}

// The repository path a relative link of a note names: resolved from the folder of the note's
// own file (`notePath`; a note without one, from the repository's root), `/x` from the root.
// {path, dir (a link ending in /), line (#L12)}, or null for a link that leaves the repository.
export function repoTarget(href, notePath) {
  const m = /^([^?#]*)(?:\?[^#]*)?(?:#L(\d+)\b.*|#.*)?$/.exec(href);
  let ref = m ? m[1] : '';
  if (!ref) return null;
  try { ref = decodeURIComponent(ref); } catch { return null; }
  const parts = ref.startsWith('/') ? [] : String(notePath || '').split('/').slice(0, -1);
  for (const seg of ref.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg !== '..') parts.push(seg);
    else if (parts.length) parts.pop();
    else return null;
  }
  if (!parts.length) return null;
  return { path: parts.join('/'), dir: ref.endsWith('/'), line: m[2] ? Number(m[2]) : 0 };
}

// A heading's anchor as GitHub (and the renderers that copy it) makes it, so that a note's
// `[see](#set-up-the-server)` written against GitHub's view finds its heading here: lower case,
// every character but letters, digits, marks, `_`, `-` and spaces dropped, spaces made `-`.
export function headingSlug(text) {
  return String(text).trim().toLowerCase().replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '').replace(/ /g, '-');
}

// Gives each heading an id: `idPrefix` (one per note: several notes, each with its "Setup",
// are open on one page) + its slug, `-1`, `-2`... for a slug seen before in the note (as
// GitHub does). data-anchor keeps the bare slug, the name a `#fragment` link uses.
function headingAnchors(frag, idPrefix) {
  const seen = new Map();
  for (const el of frag.querySelectorAll('h1, h2, h3, h4, h5, h6')) {
    const base = headingSlug(el.textContent);
    const n = seen.get(base) || 0;
    seen.set(base, n + 1);
    const anchor = n ? `${base}-${n}` : base;
    el.id = idPrefix + anchor;
    el.dataset.anchor = anchor;
  }
  return frag;
}

// A `#fragment` link names a heading of the same note. DOMPurify's hook gave it target=_blank
// like any link, so it opened the memory page again in a new tab (on its top, the note closed).
// It stays in the tab and moves to the heading, which takes the focus (a keyboard user goes on
// from there); the address is not changed: a new fragment would be a navigation that the
// router answers by drawing the page anew, every note closed. A fragment that names no heading
// does nothing.
function fragmentLinks(frag) {
  for (const a of frag.querySelectorAll('a[href^="#"]')) {
    a.removeAttribute('target');
    a.removeAttribute('rel');
    a.classList.add('fragment-link');
    a.addEventListener('click', (ev) => {
      ev.preventDefault();
      let name = a.getAttribute('href').slice(1);
      try { name = decodeURIComponent(name); } catch { /* used as it is */ }
      const scope = a.closest('.markdown') || document;
      const headings = [...scope.querySelectorAll('[data-anchor]')];
      const target = headings.find((el) => el.dataset.anchor === name) ||
        headings.find((el) => el.dataset.anchor === name.toLowerCase());
      if (!target) return;
      target.setAttribute('tabindex', '-1');
      target.scrollIntoView({ block: 'start' });
      target.focus({ preventScroll: true });
    });
  }
  return frag;
}

// A note's relative link names a file of the repository, not a page: as it was, it opened the
// page's address under the note's (Page not found). It goes to that file in the snapshot
// `fileUrl` gives (null: none), or, with no snapshot or outside the repository, becomes its text
// with the address in a title. Links with a scheme are left as DOMPurify left them.
function relativeLinks(frag, notePath, fileUrl) {
  for (const a of frag.querySelectorAll('a[href]')) {
    const href = a.getAttribute('href');
    if (/^[a-z][a-z0-9+.-]*:/i.test(href) || href.startsWith('//') || href.startsWith('#')) continue;
    const target = repoTarget(href, notePath);
    const url = target && fileUrl ? fileUrl(target) : null;
    if (url) {
      a.setAttribute('href', url);
      a.classList.add('repo-link');
      continue;
    }
    const span = document.createElement('span');
    span.className = 'repo-link-text';
    span.title = href;
    span.append(...a.childNodes);
    a.replaceWith(span);
  }
  return frag;
}

// Markdown `text` as a sanitized DocumentFragment; `notePath` and `fileUrl` as for
// relativeLinks. Headings get ids (`idPrefix` + their slug) and `#fragment` links move to them
// (headingAnchors, fragmentLinks).
export async function renderMarkdown(text, { notePath = null, fileUrl = null, idPrefix = 'md-' } = {}) {
  const [parse, DOMPurify] = await Promise.all([markdownParser(), purify()]);
  return fragmentLinks(headingAnchors(relativeLinks(imagesAsLinks(DOMPurify.sanitize(parse(String(text ?? '')), {
    RETURN_DOM_FRAGMENT: true,
    FORBID_TAGS: ['style', 'form', 'input', 'button', 'textarea', 'select', 'iframe', 'object', 'embed', 'svg', 'math'],
    FORBID_ATTR: ['style'],
  })), notePath, fileUrl), idPrefix));
}

// Fills `el` with the rendered markdown of `text`; the plain text stays if rendering fails.
export async function markdownInto(el, text, opts) {
  try {
    el.replaceChildren(await renderMarkdown(text, opts));
    el.classList.add('markdown');
  } catch (e) {
    el.textContent = String(text ?? '');
  }
}
