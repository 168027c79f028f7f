// SyncControls: the branch dropdown (from the branches endpoint, the project's selected or
// default branch preselected) and the Sync Now button. The overview tells it when a sync of the
// project runs, wherever it was started (this page, another tab, the CLI, a webhook), and the
// button stays disabled until that sync ends.

import { h, mount, notice } from './dom.js';

export function SyncControls({ project, onSync }) {
  const select = h('select#branch', { name: 'branch', disabled: true },
    h('option', { value: '' }, 'Loading branches…'));
  const button = h('button.btn.btn-primary#sync-now', { type: 'submit', disabled: true }, 'Sync Now');
  const hint = h('p.hint#sync-hint', { 'aria-live': 'polite' });
  const msg = h('div.controls-msg');
  let running = false, pending = false, branchesOk = false;

  const form = h('form.controls.needs-write', { 'aria-label': 'Sync controls',
    onsubmit: async (ev) => {
      ev.preventDefault();
      if (button.disabled) return;
      pending = true;
      update();
      mount(msg);
      try {
        await onSync(select.value || null);
      } catch (e) {
        mount(msg, notice('error', e.message));
      } finally {
        pending = false;
        update();
      }
    } },
  h('div.field.field-inline', h('label', { for: 'branch' }, 'Branch'), select),
  button, hint, msg);

  function update() {
    button.disabled = running || pending || !branchesOk;
    button.setAttribute('aria-describedby', 'sync-hint');
    hint.textContent = running ? 'A sync of this project is running; Sync Now is available when it ends.'
      : pending ? 'Starting…' : '';
  }

  return {
    el: form,
    setBranches(list, fallback) {
      branchesOk = true;
      if (!list || !list.length) {
        // The source could not list branches: still allow a sync of the project's branch.
        mount(select, h('option', { value: '' }, fallback ? `${fallback} (project branch)` : 'default branch'));
      } else {
        const chosen = list.find((b) => b.selected) || list.find((b) => b.default) || list[0];
        mount(select, list.map((b) => h('option', { value: b.name, selected: b === chosen },
          b.name + (b.default ? ' (default)' : ''))));
        select.value = chosen.name;
      }
      select.disabled = false;
      update();
    },
    branchesFailed(message, fallback) {
      this.setBranches(null, fallback);
      mount(msg, notice('warn', `Branches could not be listed: ${message}`));
    },
    setRunning(r) {
      running = !!r;
      update();
    },
    get branch() { return select.value; },
  };
}
