// The projects page (each project with its last sync: status, when, commit, failures in a row)
// with the form that adds a project, and the header every project page shares.

import { h, mount, link, notice } from './dom.js';
import { api } from './api.js';
import { ago, shortSha, until } from './format.js';

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

export function statusBadge(status) {
  return h('span.badge', { class: `badge-${status || 'none'}` }, status || 'never synced');
}

export function timeEl(iso) {
  return iso ? h('time', { datetime: iso, title: new Date(iso).toLocaleString() }, ago(iso)) : '—';
}

// The title block and tabs of a project page; `current` is the tab shown.
export function projectHeader(project, current) {
  const base = `/projects/${encodeURIComponent(project.name)}`;
  const tab = (key, href, label) => h('li', key === current
    ? h('a', { href, 'aria-current': 'page', dataset: { route: '' } }, label)
    : link(href, label));
  return h('header.page-head',
    h('p.crumbs', link('/', 'Projects'), ' / '),
    h('h1', { tabindex: '-1' }, project.name),
    h('p.muted.source', h('span.visually-hidden', 'Source: '), project.source,
      project.branch ? ` · branch ${project.branch}` : ' · default branch'),
    h('nav.tabs', { 'aria-label': 'Project' }, h('ul',
      tab('overview', base, 'Overview'),
      tab('history', `${base}/history`, 'History'),
      tab('memory', `${base}/memory`, 'Memory'),
      tab('settings', `${base}/settings`, 'Settings'))));
}

// Schedule and state: "every 10m · next in 4 min", or a paused badge with the reason, since
// when, and a button that resumes the project (POST .../resume).
export function scheduleFacts(p, onResumed) {
  if (p.state === 'paused') {
    const msg = h('div.form-msg');
    const button = h('button.btn.resume', { type: 'button' }, 'Resume');
    button.addEventListener('click', async () => {
      button.disabled = true;
      try {
        onResumed(await api.resume(p.name));
      } catch (e) {
        mount(msg, notice('error', `Could not resume: ${e.message}`));
        button.disabled = false;
      }
    });
    return h('div.paused-line',
      h('span.badge.badge-paused', 'paused'), ' ',
      h('span.paused-reason', p.paused_reason || ''), ' ',
      h('span.muted', 'since ', timeEl(p.paused_at)), ' ', button, msg);
  }
  if (!p.every || p.every === 'off') return null;
  const next = p.next_sync_at
    ? h('time.next-sync', { datetime: p.next_sync_at, title: new Date(p.next_sync_at).toLocaleString() },
      until(p.next_sync_at)) : '—';
  return h('p.muted.schedule-line', `every ${p.every}`,
    p.every === 'auto' && p.interval_seconds ? ` (now ${p.interval_seconds} s)` : '', ' · next sync ', next);
}

function projectCard(p, status) {
  const last = status && status.last_sync;
  const running = status && status.running;
  const card = h('li.project-card', { dataset: { project: p.name } },
    h('div.project-main',
      h('h3', link(`/projects/${encodeURIComponent(p.name)}`, p.name)),
      h('p.muted.source', p.source, p.branch ? ` · ${p.branch}` : '')),
    h('dl.project-facts',
      h('div', h('dt', 'Last sync'), h('dd', running ? statusBadge(running.status)
        : statusBadge(last && last.status), ' ', last && !running ? timeEl(last.finished_at || last.created_at) : '')),
      h('div', h('dt', 'Commit'), h('dd', h('code', shortSha(p.last_commit)))),
      h('div', h('dt', 'Failures in a row'), h('dd', { class: p.failures_in_row ? 'bad' : '' },
        String(p.failures_in_row)))),
    p.last_error && p.failures_in_row
      ? h('p.error-line', h('span.visually-hidden', 'Last error: '), p.last_error.message) : null,
    scheduleFacts(p, (after) => card.replaceWith(projectCard(after, status))));
  return card;
}

const FIELDS = ['name', 'source', 'project-branch'];

// The field a refusal of POST /projects is about (docs/api.md): none when the network, the
// remote host or the server failed, since no field can fix that.
function blamedField(e) {
  if (e.code === 'branch_not_found') return 'project-branch';
  if (e.status === 409 || e.code === 'invalid_name') return 'name';
  if (e.status === 0 || e.status >= 500) return null;
  return 'source';
}

function addForm(onAdded) {
  // Each field has its own error line under it (empty until a check or the server blames that
  // field), so the message sits next to what has to change, and a screen reader reads it with
  // the field.
  const field = (id, label, attrs, help) => h('div.field',
    h('label', { for: id }, label),
    h('input', { id, name: id, autocomplete: 'off', spellcheck: 'false',
      'aria-describedby': [help ? `${id}-help` : null, `${id}-error`].filter(Boolean).join(' '), ...attrs }),
    h('p.field-error', { id: `${id}-error` }),
    help ? h('p.hint', { id: `${id}-help` }, help) : null);
  const msg = h('div.form-msg');
  const button = h('button.btn.btn-primary', { type: 'submit' }, 'Add project');
  const form = h('form#add-project.card.needs-write', { novalidate: true, 'aria-labelledby': 'add-title' },
    h('h2#add-title', 'Add a project'),
    field('name', 'Name', { required: true, placeholder: 'my-app' },
      'Letters, digits, “.”, “_” and “-”; starts with a letter or digit.'),
    // Without serve --local-root the server refuses every path on its disk: the hint does not
    // offer one (docs/api.md, "Local root").
    document.body.dataset.localPaths === 'false'
      ? field('source', 'Source', { required: true, placeholder: 'https://… or github:OWNER/REPO' },
        'A git URL or github:OWNER/REPO. This server takes no paths on its own disk (it runs without --local-root); “projsync project add” does.')
      : document.body.dataset.localRoot
        ? field('source', 'Source', { required: true, placeholder: `${document.body.dataset.localRoot.replace(/\/$/, '')}/my-app or https://…` },
          `An absolute path to a git repository inside ${document.body.dataset.localRoot} (the server's --local-root), a git URL, or github:OWNER/REPO.`)
        : field('source', 'Source', { required: true, placeholder: '/srv/git/my-app or https://…' },
          'An absolute path to a git repository (inside the folder the server allows: its --local-root), a git URL, or github:OWNER/REPO.'),
    field('project-branch', 'Branch (optional)', { placeholder: 'the default branch' }),
    button, msg);

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const get = (id) => form.querySelector(`#${id}`);
    for (const id of FIELDS) {
      get(id).removeAttribute('aria-invalid');
      mount(get(`${id}-error`));
    }
    mount(msg);
    const name = get('name').value.trim(), source = get('source').value.trim();
    const branch = get('project-branch').value.trim();
    const bad = (id, text) => {
      if (!id) { mount(msg, notice('error', text)); return; }
      mount(msg);
      get(id).setAttribute('aria-invalid', 'true');
      mount(get(`${id}-error`), notice('error', text));
      get(id).focus();
    };
    if (!NAME_RE.test(name)) return bad('name', 'Give a name: letters, digits, “.”, “_” and “-”, starting with a letter or digit (at most 100).');
    if (!source) return bad('source', 'Give the source: a path to a git repository or a git URL.');
    button.disabled = true;
    mount(msg, notice('info', 'Checking the source…'));
    try {
      const p = await api.addProject({ name, source, ...(branch ? { branch } : {}) });
      mount(msg);
      form.reset();
      onAdded(p);
    } catch (e) {
      bad(blamedField(e), `Could not add the project: ${e.message}`);
    } finally {
      button.disabled = false;
    }
  });
  return form;
}

export async function projectsView({ root, navigate }) {
  const list = h('ul.project-list', { 'aria-label': 'Projects' });
  mount(root,
    h('header.page-head', h('h1', { tabindex: '-1' }, 'Projects'),
      h('p.muted', 'Live, versioned copies of git repositories.')),
    h('div.projects-layout',
      h('section', { 'aria-label': 'Project list' }, list),
      addForm((p) => navigate(`/projects/${encodeURIComponent(p.name)}`))));

  const projects = await api.projects();
  if (!projects.length) {
    mount(list, h('li.empty', 'No projects yet: add one with the form.'));
    return;
  }
  const statuses = await Promise.all(projects.map((p) => api.syncStatus(p.name).catch(() => null)));
  mount(list, projects.map((p, i) => projectCard(p, statuses[i])));
}
