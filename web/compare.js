// Comparing two syncs of a project: /projects/NAME/compare/A..B is what changed from sync A (the
// base) to sync B (the target), GET /syncs/A/diff/B: the changed files with their counts, each
// opening its content diff between the two (diffView.js), a page of changes at a time. The
// address names the syncs, and ?file= the file whose diff is open (set as one is opened, so the
// address bar can be shared; the same ?file= as the file browser's, exact bytes for a name that
// is not UTF-8). /projects/NAME/compare alone (?to=N: the target chosen) is the picker. History
// lets two syncs be ticked, and a sync's page has "Compare with…".
//
// Said rather than failed: the same sync twice (nothing differs), a sync that did not succeed
// (no snapshot), one that is not in the store any more (retention, folded checks), one of
// another project. A base newer than the target is compared as the API answers it: the way back.

import { h, mount, notice, link } from './dom.js';
import { api } from './api.js';
import { shortSha, plural } from './format.js';
import { projectHeader, statusBadge, timeEl } from './projects.js';
import { diffPanel } from './diffView.js';
import { fileParam, rawParam, namesFile, withQuery } from './files.js';

export const PAGE = 100; // changes shown at a time
const ORDER = ['added', 'modified', 'renamed', 'type_changed', 'deleted'];
const PICKER_SYNCS = 200; // syncs offered in the picker (the newest)

export function compareUrl(project, a, b) {
  return `/projects/${encodeURIComponent(project)}/compare/${a}..${b}`;
}

function syncLabel(s) {
  const parts = [`#${s.id}`];
  if (s.status !== 'succeeded') parts.push(`${s.status}: no snapshot`);
  else {
    parts.push(s.branch || 'default branch', s.commit ? shortSha(s.commit) : 'empty repository');
    if (s.head_commit?.subject) parts.push(s.head_commit.subject.slice(0, 60));
  }
  const t = s.finished_at || s.created_at;
  if (t) parts.push(new Date(t).toLocaleString());
  return parts.join(' · ');
}

// The two selects, Swap and Compare. Syncs that did not succeed are listed but cannot be
// chosen; a sync the address names that is not among them (older, or gone) is added.
function picker({ name, syncs, a, b, known, navigate }) {
  const ids = new Set(syncs.map((s) => s.id));
  const extra = [a, b].filter((id) => id && !ids.has(id)).filter((id, i, all) => all.indexOf(id) === i)
    .map((id) => known.get(id) || { id, status: 'missing' });
  const all = [...syncs, ...extra].sort((x, y) => y.id - x.id);
  const options = (selected) => all.map((s) => h('option', { value: String(s.id), selected: s.id === selected,
    disabled: s.status !== 'succeeded' }, s.status === 'missing' ? `#${s.id} · not found` : syncLabel(s)));
  const base = h('select#compare-base', { name: 'base' }, options(a));
  const target = h('select#compare-target', { name: 'target' }, options(b));
  const msg = h('div.form-msg');
  const form = h('form.compare-form', { 'aria-label': 'Choose two syncs', onsubmit: (ev) => {
    ev.preventDefault();
    if (!base.value || !target.value) {
      mount(msg, notice('error', 'Choose a base and a target sync.'));
      return;
    }
    navigate(compareUrl(name, base.value, target.value)).then(() => {
      const t = document.getElementById('compare-title');
      if (t) t.focus();
    });
  } },
  h('div.compare-pickers',
    h('div.field', h('label', { for: 'compare-base' }, 'Base (from)'), base),
    h('button.btn.btn-small#compare-swap', { type: 'button', 'aria-label': 'Swap base and target',
      onclick: () => { const v = base.value; base.value = target.value; target.value = v; } }, '⇄ Swap'),
    h('div.field', h('label', { for: 'compare-target' }, 'Target (to)'), target),
    h('button.btn.btn-primary#compare-go', { type: 'submit' }, 'Compare')),
  msg);
  if (!all.some((s) => s.status === 'succeeded'))
    return h('p.muted', 'No sync of this project has succeeded yet: there is no snapshot to compare.');
  return form;
}

// What is wrong with sync `id` (loaded as `s`, or the error of loading it) as a side of the
// comparison, or null.
function problem(id, s, err, name) {
  if (err && err.status === 404)
    return `Sync #${id} is not in the store: the project's retention (keep_syncs, keep_days) may have removed it, or a later up-to-date check took its place. Choose another.`;
  if (err) return `Sync #${id}: ${err.message}`;
  if (s.project !== name) return `Sync #${id} is a sync of project ${s.project}, not of ${name}.`;
  if (s.status === 'succeeded') return null;
  if (s.status === 'queued' || s.status === 'running')
    return `Sync #${id} is ${s.status}: it has no snapshot yet. Compare it once it has succeeded.`;
  return `Sync #${id} ${s.status === 'failed' ? 'failed' : 'was cancelled'}: it made no snapshot to compare. Choose a succeeded sync.`;
}

function summary(changes) {
  const n = (st) => changes.filter((c) => c.status === st).length;
  const c = { added: n('added'), modified: n('modified'), deleted: n('deleted'), renamed: n('renamed'), type_changed: n('type_changed') };
  return h('p.compare-summary', h('strong', plural(changes.length, 'file') + ' changed'), ' ',
    h('span.counts', { 'aria-label': `${c.added} added, ${c.modified} modified, ${c.deleted} deleted, ${c.renamed} renamed` +
      (c.type_changed ? `, ${c.type_changed} changed type` : '') },
    h('span.count.added', `+${c.added}`), h('span.count.modified', `~${c.modified}`),
    h('span.count.deleted', `−${c.deleted}`), h('span.count.renamed', `→${c.renamed}`),
    c.type_changed ? h('span.count.type-changed', `⇄${c.type_changed}`) : null));
}

// The address of this comparison with `file` open (null: none), set without drawing the page
// anew (the other open diffs stay).
function remember(file) {
  history.replaceState(null, '', withQuery(new URLSearchParams(location.search), { file }));
}

// Changes in the order both lists show them: by status, then as the API gave them.
export function sortChanges(changes) {
  return changes.map((c, i) => [c, i]).sort((x, y) =>
    (ORDER.indexOf(x[0].status) - ORDER.indexOf(y[0].status)) || (x[1] - y[1])).map(([c]) => c);
}

// `sorted` as rows of `list`, PAGE at a time (at least `upTo`), with a "Show more" button
// (id `moreId`) in `more`; `row(c, i)` makes an <li> whose `opener` is its button. Also a
// sync's page's list of its changes: a sync of thousands of files is not drawn at once.
export function pagedRows(sorted, { list, more, moreId, row, upTo = PAGE }) {
  const rows = [];
  // Shows the changes up to `end`; the first new row's button takes the focus when asked (the
  // button that was pressed is gone, which would drop a keyboard user's focus on <body>).
  const showTo = (end, focusFirst) => {
    const start = rows.length;
    for (let i = start; i < Math.min(end, sorted.length); i++) rows.push(row(sorted[i], i));
    list.append(...rows.slice(start));
    const left = sorted.length - rows.length;
    mount(more, left ? h(`button.btn#${moreId}`, { type: 'button', onclick: () => showTo(rows.length + PAGE, true) },
      `Show ${Math.min(PAGE, left)} more of ${plural(left, 'change')} left`) : null);
    if (focusFirst && rows[start]) rows[start].opener.focus();
  };
  showTo(Math.max(PAGE, upTo), false);
  return rows;
}

// The changed files, PAGE at a time; `open` (an index) is opened, scrolled to and focused.
function changeList(changes, { project, from, to, open }) {
  const sorted = sortChanges(changes);
  const list = h('ul.changes.compare-changes', { 'aria-label': 'Changed files' });
  const more = h('div.more');
  const row = (c, i) => {
    const panel = h('div.change-diff', { id: `cmp-diff-${i}`, hidden: true });
    const label = [c.status === 'renamed' ? [h('span.path', c.previous_path), ' → '] : null, h('span.path', c.path)];
    const opener = h('button.change-open', { type: 'button', 'aria-expanded': 'false', 'aria-controls': `cmp-diff-${i}`,
      onclick: () => toggle() }, label);
    async function toggle() {
      const wasOpen = opener.getAttribute('aria-expanded') === 'true';
      opener.setAttribute('aria-expanded', String(!wasOpen));
      panel.hidden = wasOpen;
      remember(wasOpen ? null : fileParam(c));
      if (wasOpen || panel.firstChild) return;
      mount(panel, h('p.muted', 'Loading the diff…'));
      try {
        mount(panel, await diffPanel({ project, from, to, change: c }));
      } catch (e) {
        mount(panel, notice('error', e.message));
      }
    }
    const li = h('li.change', { dataset: { status: c.status } },
      h('span.badge', { class: `badge-change-${c.status}` }, c.status.replace('_', ' ')), ' ', opener, panel);
    li.open = toggle;
    li.opener = opener;
    return li;
  };
  const at = open === null ? -1 : sorted.indexOf(changes[open]);
  const rows = pagedRows(sorted, { list, more, moreId: 'compare-more', row,
    upTo: Math.ceil((at + 1) / PAGE) * PAGE });
  // Once in the page (a detached button takes no focus).
  const reveal = () => {
    if (at < 0) return;
    rows[at].open();
    rows[at].opener.focus({ preventScroll: true });
    rows[at].scrollIntoView({ block: 'start' });
  };
  return { nodes: [list, more], reveal };
}

export async function compareView({ root, params, query, navigate }) {
  const name = params.name;
  const a = params.a ? Number(params.a) : null;
  const b = params.b ? Number(params.b) : (Number(query.get('to')) || null);
  const chosen = params.a !== undefined;
  const [project, syncs] = await Promise.all([api.project(name),
    api.syncs(name, PICKER_SYNCS).catch(() => [])]);
  const known = new Map(syncs.map((s) => [s.id, s]));
  const load = async (id) => {
    if (known.has(id)) return { s: known.get(id) };
    try { return { s: await api.sync(id) }; } catch (err) { return { err }; }
  };
  const [sa, sb] = chosen ? await Promise.all([load(a), load(b)]) : [{}, {}];
  for (const x of [sa, sb]) if (x.s && x.s.project === name) known.set(x.s.id, x.s);

  const result = h('div.compare-result');
  let base = a, target = b;
  if (!chosen) {
    // The picker alone: the target given (?to=) or the latest succeeded sync, against its base.
    const latest = syncs.find((s) => s.status === 'succeeded');
    const t = (target && known.get(target)) || latest;
    target = t ? t.id : null;
    base = t ? (t.base_sync_id || syncs.find((s) => s.status === 'succeeded' && s.id < t.id)?.id || t.id) : null;
  }
  const title = chosen ? `Compare #${a} → #${b}` : 'Compare two syncs';
  mount(root, projectHeader(project, 'history'),
    h('section.card.compare', { 'aria-labelledby': 'compare-title' },
      h('h2#compare-title', { tabindex: '-1' }, title),
      picker({ name, syncs, a: base, b: target, known, navigate }),
      result));
  if (!chosen) {
    // With no snapshot there is nothing to choose: the picker's own line says so, alone.
    if (syncs.some((s) => s.status === 'succeeded'))
      mount(result, h('p.muted', 'Choose a base and a target, then Compare: the files that differ between their snapshots, each with its diff.'));
    return;
  }
  const problems = [problem(a, sa.s, sa.err, name), a === b ? null : problem(b, sb.s, sb.err, name)].filter(Boolean);
  if (problems.length) {
    mount(result, problems.map((p) => notice('error', p)));
    return;
  }
  const side = (s) => h('span.compare-side', link(`/projects/${encodeURIComponent(name)}/syncs/${s.id}`, `#${s.id}`), ' ',
    statusBadge(s.status), ' ', h('code.commit', s.commit ? shortSha(s.commit) : 'empty'), ' ', timeEl(s.finished_at || s.created_at));
  const sides = h('p.compare-sides', side(sa.s), ' → ', side(sb.s));
  if (a === b) {
    mount(result, sides, notice('info', `Sync #${a} compared with itself: nothing differs. Choose another base or target.`));
    return;
  }
  mount(result, sides, h('p.muted', 'Loading the changes…'));
  let changes;
  try {
    changes = await api.compare(a, b);
  } catch (e) {
    mount(result, sides, notice('error', e.message));
    return;
  }
  // Ids grow with time: a base with the larger id is the newer sync.
  const backwards = a > b ? notice('warn', h('span.compare-backwards',
    `Base #${a} is newer than target #${b}: this is the way back, from #${a} to #${b} (a file added after #${b} shows as deleted). `,
    link(compareUrl(name, b, a), `Compare #${b} → #${a} instead`))) : null;
  if (!changes.length) {
    mount(result, sides, backwards, h('p.compare-summary', h('strong', 'No file differs'),
      ` between the snapshots of #${a} and #${b}.`));
    return;
  }
  const raw = rawParam('file'), path = query.get('file');
  const open = path === null ? null : changes.findIndex((c) => namesFile(c, raw, path, changes) ||
    (raw === null && c.previous_path === path));
  const shown = changeList(changes, { project: name, from: a, to: b, open: open === -1 ? null : open });
  mount(result, sides, backwards, summary(changes),
    open === -1 ? notice('error', 'The file this address names did not change between these syncs.') : null,
    shown.nodes);
  shown.reveal();
}
