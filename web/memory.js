// Memory: the project's active entries (a page at a time, "Load more" for the next), a search
// with highlighted snippets, a "show superseded" toggle, each entry's versions, Restore on
// superseded ones (which makes a copy of that version the active entry for its file), a form
// that adds a note by hand, and Edit / Delete on the current version of a note added by hand
// (an edit is a new version, a delete can be undone: both are restorable from the history).
// An entry's full text is its markdown, rendered and sanitized (viewers.js) when opened.

import { h, mount, notice, markedText } from './dom.js';
import { api } from './api.js';
import { projectHeader, timeEl } from './projects.js';
import { markdownInto } from './viewers.js';

const EXCERPT = 280;
const PAGE = 200;
const SEARCHABLE = /[\p{L}\p{N}]/u; // the API refuses a query with nothing to search

function origin(e) {
  if (e.restored_from) return `restored from #${e.restored_from}`;
  if (e.introduced_by_sync) return `from sync #${e.introduced_by_sync}`;
  return e.source === 'manual' ? 'written by hand' : e.source;
}

function entryStatus(e) {
  const status = e.deleted ? 'deleted' : e.status;
  return h('span.badge', { class: `badge-${status}` }, status);
}

// The actions that change memory, in one place, so a page that may only read can leave them out.
const canWrite = () => true;

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

  mount(root, projectHeader(project, 'memory'), canWrite() ? addNoteForm() : null, form, results);

  // The snapshot a note's relative links open their files in: the latest succeeded sync's,
  // asked once, when a note is first opened (none, or not known: the links stay text).
  let latest = null;
  const latestSnapshot = () => (latest ??= api.syncStatus(name)
    .then((st) => st.last_succeeded?.id ?? null, () => null));

  // Active entries first, each group in the API's order (best match first when searching).
  const ordered = (found) => [...found.filter((e) => e.status === 'active'),
    ...found.filter((e) => e.status !== 'active')];

  async function load(note) {
    const found = await api.memory(name, SEARCHABLE.test(q) ? q : '', superseded, PAGE);
    let shown = found.length;
    const entries = ordered(found);
    const count = (more) => (q ? `${shown}${more ? '+' : ''} match${shown === 1 ? '' : 'es'} for “${q}”`
      : `${shown}${more ? '+' : ''} ${superseded ? '' : 'active '}entr${shown === 1 ? 'y' : 'ies'}`);
    const head = h('p.muted.result-count', count(!!found.next));
    const list = h('ul.memory-list', entries.map(entryCard));
    const more = h('div.more');
    const pageOn = (next) => mount(more, next ? h('button.btn#memory-more', { type: 'button', onclick: async (ev) => {
      ev.currentTarget.disabled = true;
      try {
        const page = await api.more(next);
        shown += page.length;
        list.append(...ordered(page).map(entryCard));
        head.textContent = count(!!page.next);
        pageOn(page.next);
      } catch (err) {
        mount(more, notice('error', err.message));
      }
    } }, 'Load more entries') : null);
    pageOn(found.next);
    mount(results, note || null, head, entries.length ? [list, more]
      : h('p.empty', q ? (superseded ? 'Nothing matches, superseded entries included.'
        : 'Nothing matches among the active entries. Tick “Show superseded entries” to search the older ones too.') : 'No memory entries: files matching the project’s memory globs (' +
        (project.memory_globs || []).join(', ') + ') become entries when they are synced, or add a note above.'));
  }

  function addNoteForm() {
    const title = h('input#note-title', { name: 'title', required: true, maxlength: '300', autocomplete: 'off' });
    const content = h('textarea#note-content', { name: 'content', rows: '6' });
    const tags = h('input#note-tags', { name: 'tags', autocomplete: 'off', 'aria-describedby': 'note-tags-help' });
    const nmsg = h('div.form-msg');
    const details = h('details.card.add-note', h('summary', 'Add a note'),
      h('form#add-note', { novalidate: true, onsubmit: async (ev) => {
        ev.preventDefault();
        const t = title.value.trim();
        if (!t) { mount(nmsg, notice('error', 'Give the note a title.')); title.focus(); return; }
        const button = ev.currentTarget.querySelector('button[type=submit]');
        button.disabled = true;
        try {
          const e = await api.addMemory(name, { title: t, content: content.value,
            tags: tags.value.split(',').map((s) => s.trim()).filter(Boolean) });
          title.value = content.value = tags.value = '';
          mount(nmsg);
          details.open = false;
          await load(notice('info', `Added note #${e.id}: “${e.title}”.`));
        } catch (err) {
          mount(nmsg, notice('error', err.message));
        } finally {
          button.disabled = false;
        }
      } },
      h('div.field', h('label', { for: 'note-title' }, 'Title'), title),
      h('div.field', h('label', { for: 'note-content' }, 'Text (markdown)'), content),
      h('div.field', h('label', { for: 'note-tags' }, 'Tags'), tags,
        h('p.hint#note-tags-help', 'Separated by commas.')),
      h('button.btn.btn-primary', { type: 'submit' }, 'Add note'), nmsg));
    return details;
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
    if (!canWrite()) return null;
    return h('button.btn.btn-small.restore', { type: 'button',
      'aria-label': `Restore entry #${e.id} (${e.title})`,
      onclick: (ev) => restore(e, ev.currentTarget) }, 'Restore');
  }

  // A note's form: for adding (no entry) or editing (the entry's values filled in).
  function noteFields(prefix, e) {
    const title = h(`input#${prefix}-title`, { name: 'title', required: true, maxlength: '300', autocomplete: 'off',
      value: e ? e.title : '' });
    const content = h(`textarea#${prefix}-content`, { name: 'content', rows: '6' });
    content.value = e ? e.content : '';
    const tags = h(`input#${prefix}-tags`, { name: 'tags', autocomplete: 'off', 'aria-describedby': `${prefix}-tags-help`,
      value: e ? (e.tags || []).join(', ') : '' });
    const fields = [
      h('div.field', h('label', { for: `${prefix}-title` }, 'Title'), title),
      h('div.field', h('label', { for: `${prefix}-content` }, 'Text (markdown)'), content),
      h('div.field', h('label', { for: `${prefix}-tags` }, 'Tags'), tags,
        h(`p.hint#${prefix}-tags-help`, 'Separated by commas.'))];
    const values = () => ({ title: title.value.trim(), content: content.value,
      tags: tags.value.split(',').map((t) => t.trim()).filter(Boolean) });
    return { title, fields, values };
  }

  function focusEntry(id) {
    const again = results.querySelector(`[data-entry-id="${id}"] h3`);
    if (again) { again.setAttribute('tabindex', '-1'); again.focus(); }
  }

  // Edit: the card's text gives way to a form; Save makes a new version.
  function editNote(e, card) {
    const prefix = `edit-${e.id}`;
    const { title, fields, values } = noteFields(prefix, e);
    const emsg = h('div.form-msg');
    const form = h('form.edit-note', { novalidate: true, 'aria-label': `Edit note ${e.title}`, onsubmit: async (ev) => {
      ev.preventDefault();
      const v = values();
      if (!v.title) { mount(emsg, notice('error', 'Give the note a title.')); title.focus(); return; }
      const button = form.querySelector('button[type=submit]');
      button.disabled = true;
      try {
        const r = await api.editMemory(e.id, v);
        await load(notice('info', r.changed ? `Saved: entry #${r.id} is the new version of “${r.title}” (#${e.id} stays in its versions).`
          : 'Nothing changed.'));
        focusEntry(r.id);
      } catch (err) {
        button.disabled = false;
        mount(emsg, notice('error', err.message));
      }
    } },
    fields,
    h('div.entry-actions', h('button.btn.btn-primary', { type: 'submit' }, 'Save'),
      h('button.btn', { type: 'button', onclick: () => { form.replaceWith(card.actions); card.actions.querySelector('button').focus(); } }, 'Cancel')),
    emsg);
    card.actions.replaceWith(form);
    title.focus();
  }

  // Delete asks once, in place; the notice that follows can undo it (a restore).
  function deleteNote(e, card, button) {
    const keep = h('button.btn', { type: 'button', onclick: () => { ask.replaceWith(card.actions); button.focus(); } }, 'Keep it');
    const ask = h('div.entry-actions.confirm-delete', { role: 'group', 'aria-label': `Delete note ${e.title}` },
      h('span.confirm-text', 'Delete this note?'),
      h('button.btn.btn-danger', { type: 'button', onclick: async (ev) => {
        ev.currentTarget.disabled = true;
        try {
          await api.deleteMemory(e.id);
          const undo = h('button.btn.btn-small', { type: 'button', onclick: async (uev) => {
            uev.currentTarget.disabled = true;
            try {
              const r = await api.restoreMemory(e.id);
              await load(notice('info', `Restored “${r.title}” as entry #${r.id}.`));
              focusEntry(r.id);
            } catch (err) {
              uev.currentTarget.after(notice('error', err.message));
            }
          } }, 'Undo');
          await load(notice('info', `Deleted note #${e.id} “${e.title}”; it stays in its versions. `, undo));
          undo.focus();
        } catch (err) {
          ask.append(notice('error', err.message));
        }
      } }, 'Delete'),
      keep);
    card.actions.replaceWith(ask);
    keep.focus();
  }

  // Edit and Delete: the current version of a note written by hand (the API refuses the rest).
  function noteWriteButtons(e, card) {
    if (!canWrite() || e.origin !== 'manual' || e.status !== 'active') return [];
    return [
      h('button.btn.btn-small.edit-note-btn', { type: 'button', 'aria-label': `Edit note #${e.id} (${e.title})`,
        onclick: () => editNote(e, card) }, 'Edit'),
      h('button.btn.btn-small.delete-note-btn', { type: 'button', 'aria-label': `Delete note #${e.id} (${e.title})`,
        onclick: (ev) => deleteNote(e, card, ev.currentTarget) }, 'Delete')];
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
    // The full text as markdown, rendered when first opened (the library loads then).
    const full = h('div.entry-content', e.content);
    const details = h('details.full-text', h('summary', 'Full text'), full);
    details.addEventListener('toggle', () => {
      if (details.open && !full.dataset.rendered) {
        full.dataset.rendered = '1';
        latestSnapshot().then((at) => markdownInto(full, e.content, { notePath: e.source_ref, idPrefix: `note-${e.id}-`,
          fileUrl: at ? ({ path, dir, line }) => {
            const sp = new URLSearchParams();
            const folder = dir ? `${path}/` : path.slice(0, path.lastIndexOf('/') + 1);
            if (folder) sp.set('dir', folder);
            if (!dir) sp.set('file', path);
            if (line && !dir) sp.set('line', String(line));
            return `/projects/${encodeURIComponent(name)}/syncs/${at}?${sp}`;
          } : null }));
      }
    });
    const card = {};
    card.actions = h('div.entry-actions', vbtn, e.status === 'superseded' ? restoreButton(e) : null,
      noteWriteButtons(e, card));
    return h('li.memory-entry.card', { dataset: { entryId: String(e.id), status: e.status } },
      h('div.entry-head', h('h3', e.title), entryStatus(e)),
      h('p.muted.entry-meta', e.source_ref ? h('code', e.source_ref) : 'manual', ' · ', origin(e), ' · ',
        timeEl(e.created_at)),
      e.tags && e.tags.length ? h('ul.tags', { 'aria-label': 'Tags' }, e.tags.map((t) => h('li', t))) : null,
      text,
      details,
      card.actions,
      versions);
  }

  await load();
}
