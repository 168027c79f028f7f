// Memory: the project's active entries, a search with highlighted snippets, a "show
// superseded" toggle, each entry's versions, and Restore on superseded ones (which makes a copy
// of that version the active entry for its file).

import { h, mount, notice, markedText } from './dom.js';
import { api } from './api.js';
import { projectHeader, timeEl } from './projects.js';

const EXCERPT = 280;
const SEARCHABLE = /[\p{L}\p{N}]/u; // the API refuses a query with nothing to search

function origin(e) {
  if (e.restored_from) return `restored from #${e.restored_from}`;
  if (e.introduced_by_sync) return `from sync #${e.introduced_by_sync}`;
  return e.source === 'manual' ? 'written by hand' : e.source;
}

function entryStatus(e) {
  return h('span.badge', { class: `badge-${e.status}` }, e.status);
}

export async function memoryView({ root, params, query, navigate }) {
  const name = params.name;
  const project = await api.project(name);
  const q = query.get('q') || '';
  const superseded = query.get('superseded') === '1';

  const input = h('input#memory-q', { type: 'search', name: 'q', value: q, placeholder: 'words to find',
    autocomplete: 'off' });
  const toggle = h('input#show-superseded', { type: 'checkbox', name: 'superseded', checked: superseded });
  const msg = h('div.form-msg');
  const results = h('div.memory-results', { 'aria-live': 'polite' });

  const go = (opts) => {
    const sp = new URLSearchParams();
    const text = (opts.q ?? input.value).trim();
    if (text) sp.set('q', text);
    if (opts.superseded ?? toggle.checked) sp.set('superseded', '1');
    const s = sp.toString();
    navigate(location.pathname + (s ? `?${s}` : ''), { replace: true, keepFocus: true });
  };
  toggle.addEventListener('change', () => go({}));

  const form = h('form.card.memory-search', { role: 'search', onsubmit: (ev) => {
    ev.preventDefault();
    const text = input.value.trim();
    if (text && !SEARCHABLE.test(text)) {
      mount(msg, notice('error', 'Type at least one word (letters or digits) to search.'));
      return;
    }
    go({});
  } },
  h('div.field.field-inline', h('label', { for: 'memory-q' }, 'Search memory'), input,
    h('button.btn.btn-primary', { type: 'submit' }, 'Search')),
  h('div.field.check', toggle, h('label', { for: 'show-superseded' }, 'Show superseded entries')),
  msg);

  mount(root, projectHeader(project, 'memory'), form, results);

  async function load(note) {
    const found = await api.memory(name, SEARCHABLE.test(q) ? q : '', superseded);
    // Active entries first, each group in the API's order (best match first when searching).
    const entries = [...found.filter((e) => e.status === 'active'), ...found.filter((e) => e.status !== 'active')];
    const head = h('p.muted.result-count', q ? `${entries.length} match${entries.length === 1 ? '' : 'es'} for “${q}”`
      : `${entries.length} ${superseded ? '' : 'active '}entr${entries.length === 1 ? 'y' : 'ies'}`);
    mount(results, note || null, head, entries.length
      ? h('ul.memory-list', entries.map(entryCard))
      : h('p.empty', q ? 'Nothing matches.' : 'No memory entries: files matching the project’s memory globs (' +
        (project.memory_globs || []).join(', ') + ') become entries when they are synced.'));
  }

  async function restore(e, button) {
    button.disabled = true;
    try {
      const r = await api.restoreMemory(e.id);
      await load(notice('info', r.restored ? `Restored: entry #${r.id} is now the active version of “${r.title}”.`
        : `Entry #${r.id} was already the active version.`));
      const again = results.querySelector(`[data-entry-id="${r.id}"] h3`);
      if (again) { again.setAttribute('tabindex', '-1'); again.focus(); }
    } catch (err) {
      button.disabled = false;
      button.after(notice('error', err.message));
    }
  }

  function restoreButton(e) {
    return h('button.btn.btn-small.restore.needs-write', { type: 'button',
      'aria-label': `Restore entry #${e.id} (${e.title})`,
      onclick: (ev) => restore(e, ev.currentTarget) }, 'Restore');
  }

  function entryCard(e) {
    const versions = h('div.versions', { id: `versions-${e.id}`, hidden: true });
    const vbtn = h('button.btn.btn-small.btn-quiet', { type: 'button', 'aria-expanded': 'false',
      'aria-controls': `versions-${e.id}`, onclick: async () => {
        const open = vbtn.getAttribute('aria-expanded') === 'true';
        vbtn.setAttribute('aria-expanded', String(!open));
        versions.hidden = open;
        if (open) return;
        mount(versions, h('p.muted', 'Loading…'));
        try {
          const list = await api.memoryHistory(e.id);
          mount(versions, h('ol.version-list', { 'aria-label': `Versions of ${e.title}` }, list.map((v) =>
            h('li.version', { dataset: { entryId: String(v.id), status: v.status } },
              h('span', `#${v.id} `), entryStatus(v), ' ', h('span.muted', origin(v)), ' ',
              h('span.muted', timeEl(v.created_at)), ' ',
              v.status === 'superseded' ? restoreButton(v) : null))));
        } catch (err) {
          mount(versions, notice('error', err.message));
        }
      } }, 'Versions');
    const text = e.snippet ? h('p.snippet', markedText(e.snippet))
      : h('p.excerpt', e.content.length > EXCERPT ? e.content.slice(0, EXCERPT) + '…' : e.content);
    return h('li.memory-entry.card', { dataset: { entryId: String(e.id), status: e.status } },
      h('div.entry-head', h('h3', e.title), entryStatus(e)),
      h('p.muted.entry-meta', e.source_ref ? h('code', e.source_ref) : 'manual', ' · ', origin(e), ' · ',
        timeEl(e.created_at)),
      e.tags && e.tags.length ? h('ul.tags', { 'aria-label': 'Tags' }, e.tags.map((t) => h('li', t))) : null,
      text,
      h('details', h('summary', 'Full text'), h('pre.entry-content', e.content)),
      h('div.entry-actions', vbtn, e.status === 'superseded' ? restoreButton(e) : null),
      versions);
  }

  await load();
}
