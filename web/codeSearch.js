// Code search in the snapshot being browsed (GET /projects/{name}/search/code, docs/api.md).
// The search lives in the URL (?q=&regex=1&icase=1&glob=) so a result's link, which opens the
// file at its line (?file=&line=), keeps the results on the page, and Back comes back to them.
// Results are grouped by file; the matching line is shown as text nodes (never markup), the
// matches inside it marked where the browser's RegExp can find them again (PCRE2 syntax it
// does not know leaves the line marked as a whole). "More" follows the API's Link header; the
// pages already loaded are kept for the same search so opening a result does not lose them.

import { h, mount, notice } from './dom.js';
import { api } from './api.js';
import { fileParam, dirParam } from './files.js';

// The last search shown: its key, the rows and the next cursor (module state, one at a time).
let cache = null;

function keyOf(project, at, s) {
  return JSON.stringify([project, at, s.q, s.regex, s.icase, s.glob]);
}

export function searchParams(query) {
  return { q: query.get('q') || '', regex: query.get('regex') === '1', icase: query.get('icase') === '1',
    glob: query.get('glob') || '' };
}

function escapeRe(s) {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

// The browser's own regular expression for marking matches; null when it cannot be built.
function marker(s) {
  const src = s.regex ? s.q : escapeRe(s.q);
  for (const flags of ['gu', 'g']) {
    try { return new RegExp(src, flags + (s.icase ? 'i' : '')); } catch { /* next */ }
  }
  return null;
}

function lineText(text, re) {
  const out = [];
  let last = 0;
  if (re) {
    re.lastIndex = 0;
    for (let m; (m = re.exec(text)) !== null;) {
      if (m[0] === '') { re.lastIndex++; continue; }
      if (m.index > last) out.push(text.slice(last, m.index));
      out.push(h('mark', m[0]));
      last = m.index + m[0].length;
    }
  }
  if (last < text.length) out.push(text.slice(last));
  return out;
}

// The results as one list of files, each with its lines.
function resultList(rows, s, fileHref) {
  const re = marker(s);
  const groups = [];
  for (const r of rows) {
    // Two names that are not UTF-8 can show alike: a file is its bytes (path_raw) then.
    const id = r.path_raw || r.path;
    let g = groups[groups.length - 1];
    if (!g || g.id !== id) groups.push(g = { id, path: r.path, entry: r, rows: [] });
    g.rows.push(r);
  }
  return h('ol.search-files', groups.map((g) => h('li.search-file',
    h('h4.search-path', h('a', { href: fileHref(g.entry, g.rows[0].line || null), dataset: { route: '' } }, g.path),
      h('span.muted', ` ${g.rows[0].binary ? '' : g.rows.length}`)),
    g.rows[0].binary ? h('p.muted.search-binary', 'Binary file matches.')
      : h('ol.search-lines', g.rows.map((r) => h('li.search-line',
        h('a.search-lineno', { href: fileHref(g.entry, r.line), dataset: { route: '' },
          'aria-label': `${g.path} line ${r.line}` }, String(r.line)),
        h('code.search-text', lineText(r.text, re))))))));
}

async function fetchPage(project, at, s, next) {
  if (next) return api.more(next);
  return api.searchCode(project, { at, q: s.q, regex: s.regex, ignore_case: s.icase, path: s.glob || undefined });
}

// The form and, when the URL holds a search, its results. `withQuery` makes a link from
// changes to the current query; `navigate` goes there.
export async function codeSearch({ box, project, at, query, withQuery, navigate }) {
  const s = searchParams(query);
  const q = h('input#code-q', { type: 'search', name: 'q', value: s.q, placeholder: 'Search the code of this snapshot',
    autocomplete: 'off', spellcheck: 'false', 'aria-label': 'Search code' });
  const regex = h('input#code-regex', { type: 'checkbox', name: 'regex', checked: s.regex });
  const icase = h('input#code-icase', { type: 'checkbox', name: 'icase', checked: s.icase });
  const glob = h('input#code-glob', { type: 'text', name: 'glob', value: s.glob, placeholder: 'e.g. src/**/*.c',
    autocomplete: 'off', spellcheck: 'false' });
  const results = h('div.search-results', { 'aria-live': 'polite' });
  const form = h('form.code-search', { role: 'search', onsubmit: (ev) => {
    ev.preventDefault();
    const text = q.value;
    navigate(withQuery({ q: text, regex: text && regex.checked ? '1' : null, icase: text && icase.checked ? '1' : null,
      glob: text ? glob.value.trim() : null, file: null, line: null }), { keepFocus: true });
  } },
  h('div.field-inline', q, h('button.btn.btn-primary#code-go', { type: 'submit' }, 'Search')),
  h('div.search-options',
    h('label.opt', regex, ' Regular expression'),
    h('label.opt', icase, ' Ignore case'),
    h('label.opt.glob', 'Paths ', glob)));
  mount(box, form, results);
  if (!s.q) return;

  // A result opens its file by the bytes of its name when that is not UTF-8 (path_raw), as
  // the file list does: the name shown with U+FFFD names no file.
  const fileHref = (r, line) => withQuery({ file: fileParam(r), dir: dirParam(r), line: line ? String(line) : null });
  const key = keyOf(project, at, s);
  if (!cache || cache.key !== key) {
    mount(results, h('p.muted', 'Searching…'));
    let page;
    try {
      page = await fetchPage(project, at, s, null);
    } catch (e) {
      cache = null;
      const what = e.code === 'invalid_pattern' ? 'The pattern is not valid' : 'The search failed';
      return mount(results, notice('error', `${what}: ${e.message}`));
    }
    cache = { key, rows: [...page], next: page.next || null, note: page.note || null };
  }
  const show = () => {
    const files = new Set(cache.rows.map((r) => r.path_raw || r.path)).size;
    const more = cache.next ? h('button.btn.btn-small#code-more', { type: 'button', onclick: async (ev) => {
      ev.target.disabled = true;
      try {
        const page = await fetchPage(project, at, s, cache.next);
        cache.rows.push(...page);
        cache.next = page.next || null;
        show();
        const again = results.querySelector('#code-more');
        if (again) again.focus();
      } catch (e) {
        ev.target.disabled = false;
        results.append(notice('error', `Loading more failed: ${e.message}`));
      }
    } }, 'More results') : null;
    mount(results,
      cache.note ? notice('warn', `Note: ${cache.note}.`) : null,
      h('p.search-summary', cache.rows.length
        ? `${cache.rows.length} matching line${cache.rows.length === 1 ? '' : 's'} in ${files} file${files === 1 ? '' : 's'}${cache.next ? ' so far' : ''}`
        : 'No match in this snapshot.'),
      cache.rows.length ? resultList(cache.rows, s, fileHref) : null,
      more);
  };
  show();
}
