// Project settings: what `projsync project set` changes (branch, memory globs, size limit,
// schedule, pausing after failures, retention, name, source), saved with PATCH
// /projects/{name}, which checks them the same way; and removing the project, which asks the
// user to type its name first.

import { h, mount, notice } from './dom.js';
import { api } from './api.js';
import { projectHeader } from './projects.js';

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

export async function settingsView({ root, params, navigate }) {
  const name = params.name;
  const project = await api.project(name);
  const base = (n) => `/projects/${encodeURIComponent(n)}`;

  // Each field has an error line under it, so a refusal is said next to what has to change
  // (the form is long: its message line is far below most fields).
  const field = (id, label, control, help) => {
    control.setAttribute('aria-describedby', [help ? `${id}-help` : null, `${id}-error`].filter(Boolean).join(' '));
    return h('div.field', h('label', { for: id }, label), control,
      h('p.field-error', { id: `${id}-error` }),
      help ? h('p.hint', { id: `${id}-help` }, help) : null);
  };
  const nameIn = h('input#set-name', { name: 'name', value: project.name, autocomplete: 'off',
    spellcheck: 'false', 'aria-describedby': 'set-name-help' });
  const sourceIn = h('input#set-source', { name: 'source', value: project.source, autocomplete: 'off',
    spellcheck: 'false', 'aria-describedby': 'set-source-help' });
  const keep = h('input#set-continue', { type: 'checkbox', name: 'continue_history' });
  const branch = h('select#set-branch', { name: 'branch' },
    h('option', { value: '' }, 'The source’s default branch'),
    project.branch ? h('option', { value: project.branch, selected: true }, project.branch) : null);
  const globs = h('textarea#set-globs', { name: 'memory_globs', rows: '3', spellcheck: 'false',
    'aria-describedby': 'set-globs-help' }, (project.memory_globs || []).join('\n'));
  const size = h('input#set-size', { name: 'max_blob_size', type: 'number', min: '1', step: '1',
    value: String(project.max_blob_size), 'aria-describedby': 'set-size-help' });
  // Schedule and retention: what `project set --every/--keep-syncs/--keep-days/--max-failures`
  // changes. An empty number box is null (no limit, or the server's --max-failures).
  const every = h('input#set-every', { name: 'every', value: project.every || 'off', autocomplete: 'off',
    spellcheck: 'false', 'aria-describedby': 'set-every-help' });
  const num = (id, key, min, empty) => h(`input#${id}`, { name: key, type: 'number', min, step: '1', placeholder: empty,
    value: project[key] == null ? '' : String(project[key]), 'aria-describedby': `${id}-help` });
  const numbers = {
    keep_syncs: num('set-keep-syncs', 'keep_syncs', '0', 'no limit'),
    keep_days: num('set-keep-days', 'keep_days', '0', 'no limit'),
    max_failures: num('set-max-failures', 'max_failures', '0', 'the server’s default'),
  };
  const msg = h('div.form-msg');
  const save = h('button.btn.btn-primary', { type: 'submit' }, 'Save settings');

  api.branches(name).then((list) => {
    mount(branch, h('option', { value: '' }, 'The source’s default branch'),
      list.map((b) => h('option', { value: b.name, selected: b.name === project.branch },
        b.name + (b.default ? ' (default)' : ''))));
    branch.value = project.branch || '';
  }).catch(() => { /* the current choice stays selectable */ });

  // Only what the user changed is sent, so a save never rewrites settings nobody touched.
  function changes() {
    const c = {};
    const n = nameIn.value.trim();
    if (n !== project.name) c.name = n;
    const s = sourceIn.value.trim();
    if (s !== project.source) {
      c.source = s;
      if (keep.checked) c.continue_history = true;
    }
    if ((branch.value || null) !== (project.branch || null)) c.branch = branch.value || null;
    const g = globs.value.split('\n').map((x) => x.trim()).filter(Boolean);
    if (g.join('\n') !== (project.memory_globs || []).join('\n')) c.memory_globs = g;
    const z = Number(size.value);
    if (z !== project.max_blob_size) c.max_blob_size = z;
    const e = every.value.trim() || 'off';
    if (e !== (project.every || 'off')) c.every = e;
    // An empty box clears the limit: 0, as `project set --keep-syncs 0` takes it (the API
    // takes null too).
    for (const [key, input] of Object.entries(numbers)) {
      const v = input.value.trim() === '' ? 0 : Number(input.value);
      if (v !== (project[key] ?? 0)) c[key] = v;
    }
    return c;
  }

  // The field a refusal of PATCH is about (docs/api.md), from its code or the member its
  // message names; null when the network, the remote or the server failed.
  function blamed(e) {
    if (e.status === 0 || e.status >= 500) return null;
    const byCode = { invalid_every: every, branch_not_found: branch, project_exists: nameIn, invalid_name: nameIn,
      keep_days_too_large: numbers.keep_days, max_blob_size_too_large: size, source_has_history: sourceIn,
      bad_source: sourceIn, invalid_source: sourceIn, local_path_forbidden: sourceIn, repository_not_found: sourceIn };
    if (byCode[e.code]) return byCode[e.code];
    const member = /'([a-z_]+)'/.exec(e.message || '')?.[1];
    const byMember = { ...numbers, max_blob_size: size, memory_globs: globs, every, name: nameIn, source: sourceIn };
    return (member && byMember[member]) || null;
  }

  const form = h('form#project-settings.card', { novalidate: true, 'aria-labelledby': 'settings-title',
    onsubmit: async (ev) => {
      ev.preventDefault();
      for (const el of form.querySelectorAll('[aria-invalid]')) el.removeAttribute('aria-invalid');
      for (const el of form.querySelectorAll('.field-error')) mount(el);
      // A refusal about one field goes under it, the focus with it; any other in the message line.
      const bad = (input, text) => {
        if (!input) { mount(msg, notice('error', text)); return; }
        mount(msg);
        input.setAttribute('aria-invalid', 'true');
        mount(form.querySelector(`#${input.id}-error`), notice('error', text));
        input.focus();
      };
      const c = changes();
      if (c.name !== undefined && !NAME_RE.test(c.name)) {
        bad(nameIn, 'A name uses letters, digits, “.”, “_” and “-”, starts with a letter or digit, at most 100 characters.');
        return;
      }
      if (c.max_blob_size !== undefined && !(Number.isInteger(c.max_blob_size) && c.max_blob_size > 0)) {
        bad(size, 'The size limit is a positive number of bytes.');
        return;
      }
      for (const [key, input] of Object.entries(numbers)) {
        if (c[key] !== undefined && !(Number.isInteger(c[key]) && c[key] >= 0)) {
          bad(input, `${input.labels[0].textContent}: a whole number, or empty for none.`);
          return;
        }
      }
      if (!Object.keys(c).length) { mount(msg, notice('info', 'Nothing changed.')); return; }
      save.disabled = true;
      mount(msg, h('p.muted', 'Saving… (a new source or branch is checked first)'));
      try {
        const p = await api.patchProject(name, c);
        if (p.name !== name) {
          await navigate(`${base(p.name)}/settings?saved=1`, { replace: true });
          return;
        }
        Object.assign(project, p);
        every.value = p.every || 'off';
        mount(msg, notice('info', 'Saved. The next sync uses the new settings.',
          p.every && p.every !== 'off' && p.next_sync_at
            ? ` Next scheduled sync: ${new Date(p.next_sync_at).toLocaleString()}.` : ''));
      } catch (e) {
        bad(blamed(e), e.message);
      } finally {
        save.disabled = false;
      }
    } },
  h('h2#settings-title', 'Settings'),
  field('set-branch', 'Branch', branch),
  field('set-globs', 'Memory globs', globs, 'One pattern per line; markdown files that match become memory entries at the next sync.'),
  field('set-size', 'Size limit (bytes)', size, 'Larger files are kept without content; raising it makes the next sync fetch what now fits.'),
  field('set-every', 'Sync schedule', every, 'off, auto (adapts to how often the source changes), or an interval from 10s to 30d: 30s, 10m, 1h, 1d.'),
  field('set-max-failures', 'Pause after failures in a row', numbers.max_failures, 'A scheduled project pauses after this many failed syncs in a row; empty: the server’s default.'),
  field('set-keep-syncs', 'Keep syncs', numbers.keep_syncs, 'Keep at most this many syncs; older ones are pruned. Empty: no limit.'),
  field('set-keep-days', 'Keep days', numbers.keep_days, 'Prune syncs older than this many days. Empty: no limit.'),
  field('set-name', 'Name', nameIn, 'Renaming changes the project’s addresses.'),
  field('set-source', 'Source', sourceIn, 'Checked like a new project’s. Another repository is refused for a project that has synced, unless you continue its history below.'),
  h('div.field.check', keep, h('label', { for: 'set-continue' }, 'Continue this project’s history from another repository')),
  save, msg);

  const confirmIn = h('input#delete-confirm', { name: 'confirm', autocomplete: 'off', spellcheck: 'false' });
  const delBtn = h('button.btn.btn-danger#delete-project', { type: 'submit', disabled: true }, 'Delete project');
  const delMsg = h('div.form-msg');
  confirmIn.addEventListener('input', () => { delBtn.disabled = confirmIn.value !== project.name; });
  const danger = h('form#delete-form.card.danger-zone', { 'aria-labelledby': 'delete-title',
    onsubmit: async (ev) => {
      ev.preventDefault();
      if (confirmIn.value !== project.name) return;
      delBtn.disabled = true;
      try {
        await api.deleteProject(project.name);
        await navigate('/?removed=' + encodeURIComponent(project.name));
      } catch (e) {
        mount(delMsg, notice('error', e.message));
        delBtn.disabled = false;
      }
    } },
  h('h2#delete-title', 'Delete this project'),
  h('p', 'Removes the project with all its syncs, snapshots and memory. This cannot be undone.'),
  h('div.field', h('label', { for: 'delete-confirm' }, `Type “${project.name}” to confirm`), confirmIn),
  delBtn, delMsg);

  mount(root, projectHeader(project, 'settings'),
    new URLSearchParams(location.search).get('saved') ? notice('info', 'Saved.') : null,
    form, danger);
}
