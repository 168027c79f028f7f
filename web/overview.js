// Project overview: SyncControls and SyncBanner, plus the last few syncs. It keeps up with
// syncs started anywhere: it asks GET /projects/{name}/sync every few seconds (while the tab is
// visible) and follows a running sync it did not start, so Sync Now is disabled while any sync
// of the project runs and the banner shows it live.

import { h, mount, link, notice } from './dom.js';
import { api } from './api.js';
import { SyncControls } from './syncControls.js';
import { SyncBanner } from './syncBanner.js';
import { FINAL } from './projectSync.js';
import { syncRow } from './history.js';
import { projectHeader, scheduleFacts } from './projects.js';

const POLL_MS = 2000;

export async function overviewView({ root, params }) {
  const name = params.name;
  const project = await api.project(name);
  let status = null, timer = null, gone = false;

  const recent = h('div.recent');
  // Said while the polls fail for want of a server, so a page left open does not pretend.
  const offline = h('div.offline', { hidden: true });
  const controls = SyncControls({ project: name, onSync: start });
  const banner = SyncBanner({
    project: name,
    onRetry: (branch) => start(branch || controls.branch || null),
    onCancel: (id) => api.cancelSync(id),
    onChange: (st) => {
      // The stream can be ahead of the last poll: trust it while it runs.
      controls.setRunning(!FINAL.has(st.status));
      if (FINAL.has(st.status)) refresh();
    },
  });

  const scheduleEl = h('div.schedule');
  const showSchedule = (p) => mount(scheduleEl, scheduleFacts(p, showSchedule));
  showSchedule(project);
  mount(root, projectHeader(project, 'overview'),
    h('div.overview', offline, h('div.card', controls.el, scheduleEl), banner.el,
      h('section.card', { 'aria-labelledby': 'recent-title' },
        h('div.card-head', h('h2#recent-title', 'Recent syncs'),
          link(`/projects/${encodeURIComponent(name)}/history`, 'Full history')),
        recent)));

  async function start(branch) {
    try {
      const sync = await api.startSync(name, branch);
      controls.setRunning(true);
      banner.follow(sync.id, sync);
      const a = document.activeElement;
      if (!a || a === document.body || controls.el.contains(a)) banner.focus();
    } catch (e) {
      if (e.status === 409) {
        await refresh();
        throw new Error('A sync of this project is already running: it is shown below.');
      }
      throw e;
    }
  }

  async function refresh() {
    if (gone) return;
    try {
      status = await api.syncStatus(name);
    } catch (e) {
      // A missed poll is retried at the next tick; an unreachable server is said meanwhile.
      if (!gone && e.status === 0 && offline.hidden) {
        mount(offline, notice('error', 'The server cannot be reached: what is shown may be out of date. Retrying…'));
        offline.hidden = false;
      }
      return;
    }
    if (gone) return;
    if (!offline.hidden) {
      offline.hidden = true;
      offline.replaceChildren();
    }
    if (status.running) {
      controls.setRunning(true);
      banner.follow(status.running.id, status.running);
    } else {
      const st = banner.state;
      const live = st && !FINAL.has(st.status) && st.connection !== 'closed';
      controls.setRunning(live);
      if (!live) banner.show(status.last_sync);
    }
    const syncs = await api.syncs(name, 5).catch(() => null);
    if (syncs && !gone)
      mount(recent, syncs.length
        ? h('ul.sync-list', syncs.map((s) => syncRow(name, s)))
        : h('p.muted', 'No syncs yet.'));
  }

  function schedule() {
    clearTimeout(timer);
    timer = setTimeout(async () => {
      if (!document.hidden) await refresh();
      if (!gone) schedule();
    }, POLL_MS);
  }
  const onVisible = () => { if (!document.hidden) refresh(); };
  document.addEventListener('visibilitychange', onVisible);

  api.branches(name)
    .then((list) => controls.setBranches(list, project.branch))
    .catch((e) => controls.branchesFailed(e.message, project.branch));
  await refresh();
  schedule();

  return () => {
    gone = true;
    clearTimeout(timer);
    document.removeEventListener('visibilitychange', onVisible);
    banner.destroy();
  };
}
