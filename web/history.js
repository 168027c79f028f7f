// History: the chain of syncs, newest first, each opening its page (sync detail): what it
// changed and a file browser of its snapshot.

import { h, mount, link, notice } from './dom.js';
import { api, ApiError } from './api.js';
import { shortSha, duration, syncDuration, checksNote, upToDateNote, FIRST_KEPT_NOTE } from './format.js';
import { projectHeader, statusBadge, timeEl } from './projects.js';
import { fileBrowser, fileParam, withQuery } from './files.js';
import { diffPanel } from './diffView.js';
import { SyncBanner } from './syncBanner.js';
import { FINAL } from './projectSync.js';
import { compareUrl, pagedRows, sortChanges } from './compare.js';

// `withNote` false: without a first kept sync's note (a sync's page says it in a paragraph).
function counts(s, withNote = true) {
  const c = s.counts || {};
  if (s.status !== 'succeeded') return null;
  if (s.up_to_date && !s.first_kept) return h('span.muted.up-to-date', upToDateNote(s));
  // A first kept sync: its note and the counts a prune rebased onto it, as `history` prints them.
  const note = s.first_kept && withNote ? h('span.muted.up-to-date.first-kept', upToDateNote(s)) : null;
  return [note, h('span.counts', { 'aria-label': `${c.added} added, ${c.modified} modified, ${c.deleted} deleted, ${c.renamed} renamed` },
    h('span.count.added', `+${c.added}`), ' ', h('span.count.modified', `~${c.modified}`), ' ',
    h('span.count.deleted', `−${c.deleted}`), c.renamed ? [' ', h('span.count.renamed', `→${c.renamed}`)] : null)];
}

// "Ann Author, 3 min ago": who made a commit and when (the author date).
export function commitByline(c) {
  return h('span.muted.byline', c.author?.name || c.author?.email || 'unknown author', ', ',
    timeEl(c.author?.date));
}

// One sync as a list row (history, recent syncs on the overview).
export function syncRow(project, s) {
  const hc = s.head_commit;
  return h('li.sync-row', { dataset: { syncId: String(s.id), status: s.status } },
    h('div.sync-row-main',
      link(`/projects/${encodeURIComponent(project)}/syncs/${s.id}`, `#${s.id}`),
      ' ', statusBadge(s.status), ' ', h('span.branch', s.branch || 'default branch'),
      ' ', s.status === 'succeeded' && !s.commit ? h('span.muted.empty-repo', 'empty repository')
        : h('code.commit', shortSha(s.commit)),
      hc ? [' ', h('span.subject', { title: hc.subject }, hc.subject), ' ', commitByline(hc)] : null),
    h('div.sync-row-meta',
      counts(s),
      s.error ? h('span.error-line', s.error.message) : null,
      h('span.muted', duration(syncDuration(s))),
      h('span.muted.trigger', s.trigger),
      h('span.muted', timeEl(s.created_at))));
}

export async function historyView({ root, params, navigate }) {
  const name = params.name;
  const project = await api.project(name);
  const list = h('ol.sync-list.history', { 'aria-label': 'Syncs, newest first' });
  const more = h('div.more');
  // Two ticked syncs are compared (the older one as the base); ticking a third lets go of the
  // first ticked, so the last two ticked are always the pair.
  const ticked = [];
  const compareButton = h('button.btn.btn-small#compare-chosen', { type: 'button', disabled: true,
    onclick: () => {
      const [x, y] = [...ticked].sort((p, q) => p - q);
      navigate(compareUrl(name, x, y)).then(() => document.getElementById('compare-title')?.focus());
    } }, 'Compare the two ticked syncs');
  const tick = (s) => {
    const box = h('input.compare-tick', { type: 'checkbox', id: `tick-${s.id}`, onchange: () => {
      const i = ticked.indexOf(s.id);
      if (box.checked && i < 0) ticked.push(s.id);
      if (!box.checked && i >= 0) ticked.splice(i, 1);
      while (ticked.length > 2) {
        const old = document.getElementById(`tick-${ticked.shift()}`);
        if (old) old.checked = false;
      }
      compareButton.disabled = ticked.length !== 2;
      const [x, y] = [...ticked].sort((p, q) => p - q);
      compareButton.textContent = ticked.length === 2 ? `Compare #${x} → #${y}` : 'Compare the two ticked syncs';
    } });
    return h('span.compare-pick', box, h('label', { for: `tick-${s.id}` },
      h('span.visually-hidden', `Sync #${s.id}: `), 'compare'));
  };
  mount(root, projectHeader(project, 'history'),
    h('section.card', h('h2', 'History'), h('p.muted', 'Newest first. Open a sync for its changes and files.'),
      h('div.compare-bar', h('span.muted', 'Tick two syncs to compare them: '), compareButton, ' ',
        link(`/projects/${encodeURIComponent(name)}/compare`, 'or choose any two…')),
      list, more));

  // "Load older syncs" is disabled while it loads and then replaced, which would drop a
  // keyboard user's focus on <body>: the first of the rows it brought takes it (where the
  // button was, so the next Tab goes on down the list).
  const add = (page, focusFirst = false) => {
    const rows = page.map((s) => {
      const r = syncRow(name, s);
      if (s.status === 'succeeded') r.querySelector('.sync-row-main').append(tick(s));
      return r;
    });
    list.append(...rows);
    mount(more, page.next ? h('button.btn#load-older', { type: 'button', onclick: async (ev) => {
      const button = ev.currentTarget;
      button.disabled = true;
      try {
        add(await api.more(page.next), true);
      } catch (e) {
        button.disabled = false;
        mount(more, button, notice('error', e.message));
        button.focus();
      }
    } }, 'Load older syncs') : null);
    if (focusFirst && rows.length) rows[0].querySelector('a').focus();
  };
  const first = await api.syncs(name, 30);
  if (!first.length) mount(list, h('li.empty', 'No syncs yet.'));
  else add(first);
}

// Each change opens its diff against the sync's base (the previous succeeded sync) below it; a
// first sync has no base, so its files open in the file browser instead. PAGE at a time, as
// the compare view shows them.
function changesList(changes, { project, sync, openFile }) {
  if (!changes.length && !sync.commit) return h('p.muted', 'No files: the repository was empty.');
  if (!changes.length) return h('p.muted', 'No file changed.');
  const list = h('ul.changes', { 'aria-label': 'Changed files' });
  const more = h('div.more');
  const row = (c, i) => {
    const panel = h('div.change-diff', { id: `diff-${i}`, hidden: true });
    const label = [c.status === 'renamed' ? [h('span.path', c.previous_path), ' → '] : null, h('span.path', c.path)];
    const base = sync.base_sync_id;
    const opener = h('button.change-open', { type: 'button', 'aria-expanded': 'false', 'aria-controls': `diff-${i}`,
      onclick: async () => {
        if (!base) { if (c.status !== 'deleted') openFile(c); return; }
        const open = opener.getAttribute('aria-expanded') === 'true';
        opener.setAttribute('aria-expanded', String(!open));
        panel.hidden = open;
        if (open || panel.firstChild) return;
        mount(panel, h('p.muted', 'Loading the diff…'));
        try {
          mount(panel, await diffPanel({ project, from: base, to: sync.id, change: c }));
        } catch (e) {
          mount(panel, notice('error', e.message));
        }
      } }, label);
    const li = h('li.change', { dataset: { status: c.status } },
      h('span.badge', { class: `badge-change-${c.status}` }, c.status.replace('_', ' ')), ' ', opener, panel);
    li.opener = opener;
    return li;
  };
  pagedRows(sortChanges(changes), { list, more, moreId: 'changes-more', row });
  return h('div.changes-paged', list, more);
}

// What the commit list is not, in words (the sync's commit_count and commits_truncated).
function commitsNote(commits, sync) {
  // A succeeded sync without a commit found an empty repository (no commit, no branch): the
  // commit list is not missing, there is none to record.
  if (!sync.commit) return 'The repository was empty: it had no commits yet (no branch either), so this snapshot holds no files. Push a first commit and sync again to see it here.';
  if (sync.up_to_date) return 'No new commits: the branch had not moved.';
  if (!sync.base_sync_id && commits.length) return 'The project\'s first sync: only its head commit is listed.';
  if (!commits.length && sync.commit_count === 0) return 'No new commits: the head moved back to a commit the previous sync already had.';
  if (!commits.length) return 'No commits recorded for this sync.';
  if (sync.commits_truncated && sync.commit_count !== null)
    return `${sync.commit_count} commits since sync #${sync.base_sync_id}; the newest ${commits.length} are kept.`;
  if (sync.commits_truncated) return 'The list may be incomplete: the source could not show every commit since the previous sync.';
  return null;
}

// The commits a sync brought, newest first (GET /syncs/{id}/commits, `projsync log`).
function commitsList(commits, sync) {
  const note = commitsNote(commits, sync);
  return [
    commits.length ? h('ol.commits', { 'aria-label': 'Commits, newest first' }, commits.map((c) =>
      h('li.commit-row', { dataset: { sha: c.sha } },
        h('code.commit', { title: c.sha }, shortSha(c.sha)), ' ',
        h('span.subject', c.subject), ' ',
        c.parents && c.parents.length > 1 ? h('span.badge', 'merge') : null, ' ',
        commitByline(c)))) : null,
    note ? h('p.muted.commits-note', note) : null,
  ];
}

export async function syncDetailView({ root, params, query, navigate }) {
  const name = params.name, id = Number(params.id);
  const [project, sync] = await Promise.all([api.project(name), api.sync(id)]);
  // Sync ids are global: one of another project would be shown under this one's name, with
  // its files asked of this project (refused).
  if (sync.project !== project.name)
    throw new ApiError(404, 'sync_not_found', `sync ${id} is not a sync of project ${project.name} (it is one of ${sync.project})`);
  const changesBox = h('div', h('p.muted', 'Loading…'));
  const commitsBox = h('div', h('p.muted', 'Loading…'));
  const filesBox = h('div');
  mount(root, projectHeader(project, 'history'),
    h('section.card.sync-detail', { 'aria-labelledby': 'sync-title' },
      h('h2#sync-title', `Sync #${sync.id} `, statusBadge(sync.status)),
      h('dl.facts',
        h('div', h('dt', 'Branch'), h('dd', sync.branch || 'default branch')),
        h('div', h('dt', 'Commit'), h('dd', sync.status === 'succeeded' && !sync.commit
          ? h('span.empty-repo', 'none: the repository was empty') : h('code', sync.commit || '—'))),
        sync.head_commit ? h('div', h('dt', 'Head commit'), h('dd.head-commit',
          h('span.subject', sync.head_commit.subject), ' ', commitByline(sync.head_commit))) : null,
        // What it found and what its snapshot holds, before the long lists below: a first
        // sync's changes are every file, a hundred rows before the file browser.
        sync.status === 'succeeded' ? h('div', h('dt', 'Changes'), h('dd.sync-counts', counts(sync, false))) : null,
        sync.status === 'succeeded' && sync.counts ? h('div', h('dt', 'Files'), h('dd.sync-files', String(sync.counts.files))) : null,
        h('div', h('dt', 'Trigger'), h('dd', sync.trigger || '—')),
        sync.checks > 1 ? h('div', h('dt', 'Checks'), h('dd.checks', checksNote(sync))) : null,
        h('div', h('dt', 'Started'), h('dd', timeEl(sync.started_at || sync.created_at))),
        h('div', h('dt', 'Duration'), h('dd', duration(syncDuration(sync)))),
        sync.previous_sync_id ? h('div', h('dt', 'Previous'), h('dd',
          link(`/projects/${encodeURIComponent(name)}/syncs/${sync.previous_sync_id}`, `#${sync.previous_sync_id}`))) : null),
      sync.status === 'succeeded' ? h('p.compare-with', link(sync.base_sync_id ? compareUrl(name, sync.base_sync_id, sync.id)
        : `/projects/${encodeURIComponent(name)}/compare?to=${sync.id}`, 'Compare with another sync…')) : null,
      sync.first_kept ? h('p.muted.first-kept', h('strong', FIRST_KEPT_NOTE), ': a prune removed the syncs before it, '
        + 'so the changes below are its whole snapshot (every file added), not what it found.') : null,
      sync.error ? notice('error', `Failed in the ${sync.phase} phase: ${sync.error.message} (${sync.error.code})`) : null),
    h('section.card', { 'aria-labelledby': 'commits-title' }, h('h2#commits-title', 'Commits'), commitsBox),
    h('section.card', { 'aria-labelledby': 'changes-title' }, h('h2#changes-title', 'Changes'), changesBox),
    h('section.card', { 'aria-labelledby': 'files-title' }, h('h2#files-title', 'Files of this snapshot'), filesBox));

  if (!FINAL.has(sync.status)) {
    // Queued or running: it has no commits, changes or files yet, and it has not failed
    // either. Its live progress stands in for them, and the page fills in when it ends.
    let ended = false;
    const banner = SyncBanner({ project: name, onCancel: (sid) => api.cancelSync(sid), onChange: (st) => {
      if (ended || !FINAL.has(st.status)) return;
      ended = true;
      navigate(location.pathname + location.search, { replace: true, keepFocus: true });
    } });
    const waiting = `Sync #${sync.id} is ${sync.status}: this appears when it succeeds.`;
    mount(changesBox, banner.el, h('p.muted.sync-pending', waiting));
    mount(commitsBox, h('p.muted.sync-pending', waiting));
    mount(filesBox, h('p.muted.sync-pending', waiting));
    banner.follow(sync.id, sync);
    return () => banner.destroy();
  }
  if (sync.status !== 'succeeded') {
    mount(changesBox, h('p.muted', 'This sync did not succeed: it made no snapshot.'));
    mount(commitsBox, h('p.muted', 'No commits: the sync did not succeed.'));
    mount(filesBox, h('p.muted', 'No snapshot.'));
    return;
  }
  const [changes, commits] = await Promise.all([api.changes(id), api.commits(id)]);
  mount(commitsBox, commitsList(commits, sync));
  mount(changesBox, changesList(changes, { project: name, sync,
    openFile: (c) => navigate(withQuery('', { file: fileParam(c) }), { keepFocus: true }) }));
  await fileBrowser({ box: filesBox, project: name, at: id, query, maxBlob: project.max_blob_size, navigate });
}
