// The diff of one file between two syncs, from GET /syncs/{a}/diff/{b}?patch=1 (git's hunks with
// 3 lines of context): unified or side by side, with old and new line numbers, the changed words
// of a changed line highlighted, and the unchanged lines between hunks collapsed into a row that
// expands them (read from the file at the newer sync). Every text goes in as a text node.
// Rows are built in chunks as they come near the viewport (a large change would otherwise take
// seconds to show), and a line pair's word highlights are computed when its row is built.

import { h, mount, notice } from './dom.js';
import { api } from './api.js';

const MAX_WORD_DIFF = 40000; // tokens(old) * tokens(new) above which a line pair is not refined

function tokens(s) {
  return s.match(/\s+|[\p{L}\p{N}_]+|[^\s\p{L}\p{N}_]/gu) || [];
}

// Word-level difference of two lines (LCS over words, spaces and punctuation): the parts of
// each side, marked when they are not common to both. null when the lines are too long.
export function wordDiff(a, b) {
  const x = tokens(a), y = tokens(b);
  if (!x.length || !y.length || x.length * y.length > MAX_WORD_DIFF) return null;
  const n = x.length, m = y.length;
  const dp = Array.from({ length: n + 1 }, () => new Uint16Array(m + 1));
  for (let i = n - 1; i >= 0; i--)
    for (let j = m - 1; j >= 0; j--)
      dp[i][j] = x[i] === y[j] ? dp[i + 1][j + 1] + 1 : Math.max(dp[i + 1][j], dp[i][j + 1]);
  const left = [], right = [];
  const push = (arr, text, changed) => {
    const last = arr[arr.length - 1];
    if (last && last.changed === changed) last.text += text;
    else arr.push({ text, changed });
  };
  let i = 0, j = 0;
  while (i < n && j < m) {
    if (x[i] === y[j]) { push(left, x[i], false); push(right, y[j], false); i++; j++; }
    else if (dp[i + 1][j] >= dp[i][j + 1]) push(left, x[i++], true);
    else push(right, y[j++], true);
  }
  while (i < n) push(left, x[i++], true);
  while (j < m) push(right, y[j++], true);
  return { left, right };
}

function codeCell(text, parts, tag, cls) {
  const attrs = cls ? { class: cls } : null;
  if (!parts) return h('td.code', attrs, text);
  return h('td.code', attrs, parts.map((p) => (p.changed ? h(tag, p.text) : p.text)));
}

// A changed line pair's word highlights, computed the first time one of its rows is built: the
// LCS is most of the cost of a large change, and rows far below the fold may never be built.
function words(p) {
  if (p.words === undefined) p.words = p.del && p.add ? wordDiff(p.del.text, p.add.text) : null;
  return p.words;
}

// Pairs each run of deleted lines with the run of added lines that follows it, line by line,
// so that both the word highlights and the side-by-side view line them up.
function pairs(lines) {
  const out = [];
  for (let k = 0; k < lines.length;) {
    if (lines[k].origin !== '-') { out.push({ ctx: lines[k] }); k++; continue; }
    const dels = [], adds = [];
    while (k < lines.length && lines[k].origin === '-') dels.push(lines[k++]);
    while (k < lines.length && lines[k].origin === '+') adds.push(lines[k++]);
    for (let i = 0; i < Math.max(dels.length, adds.length); i++) out.push({ del: dels[i], add: adds[i] });
  }
  return out;
}

function lineText(l) {
  return l.text + (l.no_newline ? ' ⏎̸' : '');
}

// The rows of a hunk as builders (functions returning the <tr>), so that only the rows that
// are shown cost DOM and word diffs.
function rowsUnified(hunk) {
  const rows = [];
  for (const p of pairs(hunk.lines)) {
    if (p.ctx) {
      const l = p.ctx;
      rows.push(() => h(`tr.${l.origin === '+' ? 'add' : 'ctx'}`, h('td.ln', l.old_lineno ?? ''),
        h('td.ln', l.new_lineno ?? ''), codeCell(lineText(l), null)));
      continue;
    }
    if (p.del) rows.push(Object.assign(() => h('tr.del', h('td.ln', p.del.old_lineno), h('td.ln', ''),
      codeCell(lineText(p.del), words(p) && words(p).left, 'del')), { del: true }));
    if (p.add) rows.push({ later: () => h('tr.add', h('td.ln', ''), h('td.ln', p.add.new_lineno),
      codeCell(lineText(p.add), words(p) && words(p).right, 'ins')) });
  }
  // git's order: a run's deleted lines, then its added lines.
  const out = [];
  let pending = [];
  for (const r of rows) {
    if (r.later) { pending.push(r.later); continue; }
    if (!r.del && pending.length) { out.push(...pending); pending = []; }
    out.push(r);
  }
  out.push(...pending);
  return out;
}

function rowsSplit(hunk) {
  return pairs(hunk.lines).map((p) => () => {
    if (p.ctx) {
      const l = p.ctx;
      return h('tr.ctx', h('td.ln', l.old_lineno ?? ''), codeCell(lineText(l), null),
        h('td.ln', l.new_lineno ?? ''), codeCell(lineText(l), null));
    }
    const w = words(p);
    return h(`tr.${p.del && p.add ? 'chg' : p.del ? 'del' : 'add'}`,
      h('td.ln', p.del ? p.del.old_lineno : ''),
      p.del ? codeCell(lineText(p.del), w && w.left, 'del', 'old') : h('td.code'),
      h('td.ln', p.add ? p.add.new_lineno : ''),
      p.add ? codeCell(lineText(p.add), w && w.right, 'ins', 'new') : h('td.code'));
  });
}

// The file as a whole at the newer sync, split in lines (for expanding unchanged regions).
async function newLines(ctx) {
  if (!ctx.linesPromise) {
    ctx.linesPromise = api.file(ctx.project, ctx.file, ctx.to).then(({ bytes }) => {
      const text = new TextDecoder().decode(bytes);
      const lines = text.split('\n');
      if (lines.length && lines[lines.length - 1] === '') lines.pop();
      return lines;
    });
  }
  return ctx.linesPromise;
}

// A collapsed run of unchanged lines: new lines [from, to] (1-based; to = null: to the end),
// old numbers offset by `shift`. Clicking replaces the row with the lines.
function gapRow(ctx, from, to, shift, cols) {
  const label = to === null ? 'Show the unchanged lines to the end' : `${to - from + 1} unchanged line${to === from ? '' : 's'}`;
  const row = h('tr.gap', h('td', { colspan: String(cols) }, h('button', { type: 'button',
    'aria-label': `Expand ${label.toLowerCase()}`,
    onclick: async () => {
      try {
        const lines = await newLines(ctx);
        const last = to === null ? lines.length : Math.min(to, lines.length);
        const rows = [];
        for (let n = from; n <= last; n++) {
          const t = lines[n - 1];
          rows.push(cols === 3
            ? h('tr.ctx.expanded', h('td.ln', n - shift), h('td.ln', n), h('td.code', t))
            : h('tr.ctx.expanded', h('td.ln', n - shift), h('td.code', t), h('td.ln', n), h('td.code', t)));
        }
        row.replaceWith(...rows);
      } catch (e) {
        row.firstChild.replaceChildren(notice('error', e.message));
      }
    } }, `⋯ ${label}`)));
  return row;
}

const CONTEXT = 3; // lines of context around each hunk (the API's patch=1)

export const CHUNK = 200; // rows built at once: the first screenful and more, never the whole file

// Appends the rows built by `builders` to `body` CHUNK at a time: the first chunk at once, each
// next one when a sentinel row after the last built one comes near the viewport. A 10,000-line
// change would otherwise build 20,000 rows (and their word diffs) before showing any.
// Returns a function that stops loading (the panel redraws the table in the other form).
function fillLazily(body, builders, cols) {
  let next = 0, observer = null, sentinel = null;
  const more = () => {
    const end = Math.min(next + CHUNK, builders.length);
    const rows = [];
    for (; next < end; next++) rows.push(builders[next]());
    const left = builders.length - next;
    const s = left ? h('tr.diff-more', h('td.muted', { colspan: String(cols) },
      `${left} more line${left === 1 ? '' : 's'}…`)) : null;
    if (sentinel) sentinel.replaceWith(...rows, ...(s ? [s] : []));
    else body.append(...rows, ...(s ? [s] : []));
    sentinel = s;
    if (!s) { if (observer) observer.disconnect(); observer = null; return; }
    if (!observer) {
      // A viewport ahead, so that scrolling at an ordinary pace rarely reaches the sentinel.
      observer = new IntersectionObserver((entries) => {
        if (entries.some((e) => e.isIntersecting)) more();
      }, { rootMargin: '100% 0px' });
    } else observer.disconnect();
    observer.observe(s);
  };
  more();
  return () => { if (observer) observer.disconnect(); observer = null; };
}

// Renders `file` (one entry of the patch JSON) into a box; `split` picks the side-by-side form.
// The returned element's `stop()` ends the loading of further rows.
export function renderFileDiff(file, { project, from, to, split = false }) {
  const ctx = { project, file, from, to };
  const cols = split ? 4 : 3;
  const body = h('tbody');
  const table = h('table', { class: split ? 'diff-split' : 'diff-unified' }, body);
  const canExpand = file.new_mode && !file.binary && file.status !== 'deleted' && file.new_mode !== '160000';
  const builders = [];
  let newEnd = 0, shift = 0; // last new line shown; new line number - old line number
  for (const hunk of file.hunks || []) {
    if (canExpand && hunk.new_start > newEnd + 1) {
      const [a, b, d] = [newEnd + 1, hunk.new_start - 1, hunk.new_start - hunk.old_start];
      builders.push(() => gapRow(ctx, a, b, d, cols));
    }
    builders.push(...(split ? rowsSplit(hunk) : rowsUnified(hunk)));
    newEnd = hunk.new_start + hunk.new_lines - 1;
    shift = (hunk.new_start + hunk.new_lines) - (hunk.old_start + hunk.old_lines);
  }
  // Lines may follow the last hunk only when it ends with a full context (git's 3 lines): one
  // ending with fewer, or with a change, reaches the end of the file.
  const lastLines = (file.hunks || []).length ? file.hunks.at(-1).lines : [];
  let trailing = 0;
  while (trailing < lastLines.length && lastLines[lastLines.length - 1 - trailing].origin === ' ') trailing++;
  if (canExpand && trailing >= CONTEXT && !lastLines.some((l) => l.no_newline)) {
    const [a, d] = [newEnd + 1, shift];
    builders.push(() => gapRow(ctx, a, null, d, cols));
  }
  const stop = fillLazily(body, builders, cols);
  const note = file.note || (file.binary ? 'Binary files differ.' : null) ||
    (!(file.hunks || []).length ? (file.status === 'renamed' ? 'Renamed without changes.' : 'No content change (mode only).') : null);
  const box = h('div.diff-body', note ? h('p.diff-note.muted', note) : null,
    (file.hunks || []).length ? table : null);
  box.stop = stop;
  return box;
}

// The diff panel of one change: fetches it and offers unified / side-by-side.
export async function diffPanel({ project, from, to, change }) {
  const box = h('section.diff', { 'aria-label': `Diff of ${change.path}` });
  const patch = await api.diff(from, to, change);
  // The patch's entries carry no path_raw: the change's goes with its file, for reading the
  // whole file when unchanged lines are expanded.
  const files = (patch.files || []).filter((f) => f.path === change.path || f.previous_path === change.path)
    .map((f) => (f.path === change.path && change.path_raw ? { ...f, path_raw: change.path_raw } : f));
  let split = false;
  const content = h('div');
  const toggle = h('button.btn.btn-small.diff-toggle', { type: 'button', 'aria-pressed': 'false',
    onclick: () => { split = !split; toggle.setAttribute('aria-pressed', String(split)); draw(); } }, 'Side by side');
  const stat = files.reduce((s, f) => [s[0] + (f.added || 0), s[1] + (f.deleted || 0)], [0, 0]);
  let shown = [];
  function draw() {
    toggle.textContent = split ? 'Unified' : 'Side by side';
    shown.forEach((b) => b.stop());
    shown = files.map((f) => renderFileDiff(f, { project, from, to, split }));
    mount(content, files.length ? shown : h('p.diff-note.muted', 'No difference.'));
  }
  box.append(h('div.diff-head',
    h('span.path', change.previous_path ? `${change.previous_path} → ${change.path}` : change.path),
    h('span', h('span.count.added', `+${stat[0]}`), ' ', h('span.count.deleted', `−${stat[1]}`)),
    toggle), content);
  draw();
  return box;
}
