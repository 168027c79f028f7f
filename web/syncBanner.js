// SyncBanner: the live picture of one sync. Five phase dots (done / current / pending, or
// failed), a progress bar, files done/total, bytes and elapsed time while it runs; then the
// outcome: added/modified/deleted/renamed counts, or the phase and reason of a failure with a
// Retry button. It follows a running sync through useProjectSync, or shows a finished sync
// from its sync object (no stream needed).

import { h, mount, link, notice } from './dom.js';
import { PHASES, bytes, duration, shortSha, plural } from './format.js';
import { useProjectSync, stateFromSync, liveElapsed, FINAL } from './projectSync.js';

const STATUS_TEXT = {
  connecting: 'Connecting…',
  queued: 'Queued',
  running: 'Syncing',
  succeeded: 'Synced',
  failed: 'Sync failed',
  cancelled: 'Sync cancelled',
};

function phaseState(st, i) {
  const n = i + 1;
  if (st.status === 'succeeded') return 'done';
  if (st.status === 'failed' || st.status === 'cancelled') {
    if (n < st.phaseIndex) return 'done';
    return n === st.phaseIndex ? 'failed' : 'pending';
  }
  if (n < st.phaseIndex) return 'done';
  return n === st.phaseIndex ? 'current' : 'pending';
}

export function SyncBanner({ project, onRetry, onChange, onCancel }) {
  const body = h('div.banner-body');
  // Outside `body`, which every update rebuilds: the Cancel button stays the same node while its
  // sync runs, so an update arriving mid-click neither swallows the click nor takes the focus.
  const actions = h('div.banner-actions', { hidden: true });
  const live = h('p.visually-hidden', { role: 'status', 'aria-live': 'polite' });
  const el = h('section.banner', { 'aria-labelledby': 'banner-title', dataset: { status: 'none' } },
    body, actions, live);
  let unsub = null, tick = null, state = null, sync = null, elapsedEl = null, lastSpoken = '';
  let cancelFor = null; // the sync the Cancel button in `actions` is for
  let cancelPressed = false; // (disabling the pressed button blurs it: remember it was used)

  function detach() {
    if (unsub) unsub();
    unsub = null;
    clearInterval(tick);
    tick = null;
  }

  function speak(text) {
    if (text !== lastSpoken) live.textContent = lastSpoken = text;
  }

  // Cancel: the sync stops at its next step and ends `cancelled`, wherever it runs.
  function renderCancel(syncId) {
    if (syncId === cancelFor) return;
    cancelFor = syncId;
    actions.hidden = syncId === null;
    if (syncId === null) {
      actions.replaceChildren();
      return;
    }
    const button = h('button.btn#cancel-sync', { type: 'button', onclick: async () => {
      cancelPressed = true;
      button.disabled = true;
      button.textContent = 'Cancelling…';
      try {
        await onCancel(syncId);
        speak('Cancel requested: the sync stops at its next step.');
      } catch (e) {
        cancelPressed = false;
        button.disabled = false;
        button.textContent = 'Cancel sync';
        button.after(notice('error', e.message));
      }
    } }, 'Cancel sync');
    actions.replaceChildren(button);
  }

  function render() {
    const st = state;
    el.dataset.status = st ? st.status : 'none';
    if (!st) {
      renderCancel(null);
      mount(body, h('h2#banner-title', 'No sync yet'),
        h('p.muted', 'Pick a branch and press Sync Now to take the first snapshot.'));
      return;
    }
    const s = st.summary || sync || {};
    const running = !FINAL.has(st.status);
    const title = h('h2#banner-title', h('span.banner-status', STATUS_TEXT[st.status] || st.status),
      ' ', h('span.muted', `sync #${st.syncId}`, ` · ${s.branch || 'default branch'}`));

    const dots = h('ol.phases', { 'aria-label': 'Phases' }, PHASES.map((name, i) => {
      const ps = phaseState(st, i);
      return h('li.phase', { class: `phase-${ps}`, dataset: { phase: name, state: ps },
        'aria-current': ps === 'current' ? 'step' : null },
      h('span.dot', { 'aria-hidden': 'true' }), h('span.phase-name', name),
      h('span.visually-hidden', `: ${ps}`));
    }));

    const pct = Math.round(Math.max(0, Math.min(1, st.fraction || 0)) * 100);
    const bar = h('div.progress', { role: 'progressbar', 'aria-label': 'Sync progress',
      'aria-valuemin': '0', 'aria-valuemax': '100', 'aria-valuenow': String(pct) },
    h('div.progress-fill'));
    bar.firstChild.style.width = `${pct}%`;

    elapsedEl = h('dd.elapsed', duration(liveElapsed(st)));
    const stats = h('dl.stats',
      h('div', h('dt', 'Files'), h('dd.files', st.filesTotal
        ? `${st.filesDone.toLocaleString()} / ${st.filesTotal.toLocaleString()}`
        : st.filesDone.toLocaleString())),
      h('div', h('dt', 'Fetched'), h('dd.bytes', bytes(st.bytes))),
      h('div', h('dt', 'Elapsed'), elapsedEl),
      h('div', h('dt', 'Progress'), h('dd', `${pct}%`)));

    let outcome = null;
    if (st.status === 'succeeded') {
      const c = s.counts || {};
      // No commit: the source is an empty repository (no commit, no branch), not a sync that
      // lost its commit; "Commit —" and "+0 added" would say nothing of it.
      outcome = 'commit' in s && !s.commit ? h('div.outcome.outcome-ok',
        h('p.empty-repo', s.up_to_date ? 'Still empty: the repository has no commits yet.'
          : 'The repository is empty: it has no commits yet, so there are no files to copy.'),
        h('p.muted', 'Push a first commit and sync again. ',
          link(`/projects/${encodeURIComponent(project)}/syncs/${st.syncId}`, 'This sync'))) : h('div.outcome.outcome-ok',
        s.up_to_date ? h('p', 'Already up to date: the branch has not moved.')
          : h('p.counts', { 'aria-label': 'Changes' },
            h('span.count.added', `+${c.added ?? 0} added`),
            h('span.count.modified', `~${c.modified ?? 0} modified`),
            h('span.count.deleted', `−${c.deleted ?? 0} deleted`),
            c.renamed ? h('span.count.renamed', `→${c.renamed} renamed`) : null),
        h('p.muted', `Commit ${shortSha(s.commit)}`,
          s.head_commit ? [' ', h('span.subject', `“${s.head_commit.subject}”`),
            ` by ${s.head_commit.author?.name || 'unknown'}`] : null,
          ` · ${plural(c.files ?? 0, 'file')} in the snapshot · `,
          link(`/projects/${encodeURIComponent(project)}/syncs/${st.syncId}`, 'changes and files')));
    } else if (st.status === 'failed' || st.status === 'cancelled') {
      const e = st.error || {};
      outcome = h('div.outcome.outcome-bad', { role: 'alert' },
        h('p', h('strong', st.status === 'cancelled' ? 'Cancelled' : 'Failed'),
          e.phase && e.phase !== 'none' ? ` in the ${e.phase} phase` : '', ': ',
          h('span.reason', e.message || 'no reason given'),
          e.code ? h('code.muted', ` (${e.code})`) : null),
        onRetry ? h('button.btn.needs-write', { type: 'button', onclick: () => onRetry(s.branch) }, 'Retry') : null);
    }
    if (st.warnings.length)
      outcome = [outcome, h('ul.warnings', { 'aria-label': 'Warnings' },
        st.warnings.map((w) => h('li', w)))];
    const conn = running && st.connection === 'reconnecting'
      ? h('p.muted.reconnecting', 'Connection lost — reconnecting…') : null;
    // A keyboard user who pressed Cancel would be left on <body> when the button goes away:
    // the focus moves to the outcome's Retry, or the banner's title.
    // Every update rebuilds the title: one that had the focus gives it to its successor.
    const active = document.activeElement;
    const hadFocus = actions.contains(active) || (cancelPressed && active === document.body);
    const keepTitle = active && active.id === 'banner-title' && body.contains(active);
    renderCancel(running && onCancel ? st.syncId : null);
    title.tabIndex = -1;
    mount(body, title, dots, bar, stats, conn, outcome);
    if (keepTitle) title.focus({ preventScroll: true });
    if (actions.hidden) cancelPressed = false;
    if (hadFocus && actions.hidden) {
      const retry = body.querySelector('.outcome button');
      if (retry && retry.offsetParent !== null) retry.focus();
      else title.focus();
    }
    speak(running ? `${STATUS_TEXT[st.status]}${st.phaseIndex ? `: ${st.phase}` : ''}`
      : `${STATUS_TEXT[st.status]}`);
  }

  return {
    el,
    get state() { return state; },
    // Follows a sync live (its stream replays what happened before we came).
    follow(syncId, syncObj) {
      if (state && state.syncId === syncId && unsub) return;
      detach();
      sync = syncObj || null;
      unsub = useProjectSync(syncId).subscribe((st) => {
        state = st;
        render();
        if (FINAL.has(st.status)) clearInterval(tick);
        if (onChange) onChange(st);
      });
      tick = setInterval(() => {
        if (elapsedEl && state && state.status === 'running') elapsedEl.textContent = duration(liveElapsed(state));
      }, 250);
    },
    // Shows a sync from its object (the last one, when nothing runs).
    show(syncObj) {
      if (state && unsub && !FINAL.has(state.status)) return; // a live one wins
      if (state && syncObj && state.syncId === syncObj.id && FINAL.has(state.status)) return;
      detach();
      sync = syncObj;
      state = syncObj ? stateFromSync(syncObj) : null;
      render();
    },
    // The focus to the banner's title (a sync started from the keyboard: its button is
    // disabled while the sync runs, which would leave the focus on <body>).
    focus() {
      const t = body.querySelector('#banner-title');
      if (t) t.focus();
    },
    destroy: detach,
  };
}
