// The page's entry point: a small router over the History API. Addresses are real paths
// (`/projects/NAME/history`), which the server answers with index.html, so reloading or sharing
// one opens the same view. Links marked data-route are followed without a page load; after a
// navigation the new page's heading takes the focus, so keyboard and screen-reader users land
// on what changed.

import { h, mount, notice } from './dom.js';
import { api, setToken, hasToken } from './api.js';
import { projectsView } from './projects.js';
import { overviewView } from './overview.js';
import { historyView, syncDetailView } from './history.js';
import { memoryView } from './memory.js';
import { settingsView } from './settings.js';
import { compareView } from './compare.js';

const routes = [
  [/^\/(?:projects\/?)?$/, projectsView, 'Projects'],
  [/^\/projects\/([^/]+)\/?$/, overviewView, (p) => p.name, ['name']],
  [/^\/projects\/([^/]+)\/history\/?$/, historyView, (p) => `History · ${p.name}`, ['name']],
  [/^\/projects\/([^/]+)\/syncs\/(\d+)\/?$/, syncDetailView, (p) => `Sync #${p.id} · ${p.name}`, ['name', 'id']],
  [/^\/projects\/([^/]+)\/compare\/?$/, compareView, (p) => `Compare · ${p.name}`, ['name']],
  [/^\/projects\/([^/]+)\/compare\/(\d+)\.\.(\d+)\/?$/, compareView, (p) => `Compare #${p.a} → #${p.b} · ${p.name}`, ['name', 'a', 'b']],
  [/^\/projects\/([^/]+)\/memory\/?$/, memoryView, (p) => `Memory · ${p.name}`, ['name']],
  [/^\/projects\/([^/]+)\/settings\/?$/, settingsView, (p) => `Settings · ${p.name}`, ['name']],
];

const root = document.getElementById('main');
let cleanup = null;
let generation = 0;

function match(path) {
  for (const [re, view, title, names = []] of routes) {
    const m = re.exec(path);
    if (!m) continue;
    const params = {};
    // A bad escape (an address cut short) names no project: Page not found, not a page error.
    try {
      names.forEach((n, i) => { params[n] = decodeURIComponent(m[i + 1]); });
    } catch {
      return null;
    }
    return { view, params, title: typeof title === 'function' ? title(params) : title };
  }
  return null;
}

// A read-only token (docs/api.md, "Access") gets the same views without the controls that
// write: everything marked .needs-write is hidden while the server says `access: read`.
// `local_paths` and `local_root` are kept too, for the Add form.
async function learnAccess() {
  let access = 'write', localPaths = true, localRoot = null;
  try {
    ({ access, local_paths: localPaths, local_root: localRoot } = await api.whoami());
  } catch { /* 401 etc.: the views say so */ }
  document.body.dataset.access = access;
  // Whether a project's source may be a path on the server's disk (serve --local-root), and
  // which folder: the Add form says which sources this server takes.
  document.body.dataset.localPaths = String(localPaths !== false);
  if (typeof localRoot === 'string') document.body.dataset.localRoot = localRoot;
  else delete document.body.dataset.localRoot;
  document.getElementById('access-note').hidden = access !== 'read';
}

function tokenForm(retry) {
  const input = h('input#token', { type: 'password', autocomplete: 'off', 'aria-describedby': 'token-help' });
  return h('form.card', { onsubmit: (ev) => { ev.preventDefault(); setToken(input.value.trim()); learnAccess().then(retry); } },
    h('div.field', h('label', { for: 'token' }, 'API token'), input,
      h('p.hint#token-help', 'This tab keeps it until it is closed; nothing else stores it.')),
    h('button.btn.btn-primary', { type: 'submit' }, 'Use token'));
}

// A server started with a token (docs/api.md, "Access") answers 401 until the page has one: a
// first-time user meets this before anything else, so it says what is asked for and where it
// comes from, in words, not as an HTTP header.
function tokenPage(retry) {
  mount(root, h('h1', { tabindex: '-1' }, 'This server needs a token'),
    h('p', 'Enter the token the server was started with: its ', h('code', 'PROJSYNC_API_TOKEN'),
      ', or its ', h('code', 'PROJSYNC_READ_TOKEN'), ' to look without changing anything. Ask whoever runs the server for it.'),
    // The server says the same for a missing and a wrong token: after one was given, say
    // it was refused, or the form looks as if it had done nothing.
    hasToken() ? notice('error', h('span.token-refused', 'The server refused the token this tab holds: check it and enter it again.')) : null,
    tokenForm(retry));
  root.querySelector('#token').focus();
}

async function render({ keepFocus = false } = {}) {
  const gen = ++generation;
  const focusId = keepFocus && document.activeElement ? document.activeElement.id : null;
  // A link that stays in place (data-stay) names the element to focus after the render.
  const focusKey = keepFocus && document.activeElement ? document.activeElement.dataset?.focusKey : null;
  if (cleanup) { cleanup(); cleanup = null; }
  const route = match(location.pathname);
  const query = new URLSearchParams(location.search);
  if (!route) {
    document.title = 'Not found · projsync';
    mount(root, h('h1', { tabindex: '-1' }, 'Page not found'), h('p', h('a', { href: '/', dataset: { route: '' } }, 'Back to the projects')));
    return;
  }
  document.title = `${route.title} · projsync`;
  root.setAttribute('aria-busy', 'true');
  try {
    const c = await route.view({ root, params: route.params, query, navigate });
    if (gen !== generation) { if (typeof c === 'function') c(); return; }
    cleanup = typeof c === 'function' ? c : null;
  } catch (e) {
    if (gen !== generation) return;
    if (e.status === 401) tokenPage(() => render());
    else mount(root, h('h1', { tabindex: '-1' }, e.status === 404 ? 'Not found' : 'Something went wrong'),
      notice('error', e.message),
      h('p', h('a', { href: '/', dataset: { route: '' } }, 'Back to the projects')));
  } finally {
    if (gen === generation) root.removeAttribute('aria-busy');
  }
  if (gen !== generation) return;
  const again = (focusId && document.getElementById(focusId)) ||
    (focusKey && root.querySelector(`[data-focus-key="${CSS.escape(focusKey)}"]`));
  if (again) again.focus();
  else if (!keepFocus) {
    const h1 = root.querySelector('h1');
    if (h1 && document.activeElement === document.body) h1.focus({ preventScroll: true });
  }
}

export function navigate(url, { replace = false, keepFocus = false } = {}) {
  if (replace) history.replaceState(null, '', url);
  else history.pushState(null, '', url);
  if (!keepFocus) window.scrollTo(0, 0);
  return render({ keepFocus });
}

document.addEventListener('click', (ev) => {
  const a = ev.target.closest('a[data-route]');
  if (!a || ev.defaultPrevented || ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.altKey) return;
  const url = new URL(a.href, location.href);
  if (url.origin !== location.origin) return;
  ev.preventDefault();
  // Inside a view (a folder or a file of the snapshot browser): the page stays where it is and
  // the focus goes to the same link in the new render, not to the top and its heading.
  if (a.dataset.stay !== undefined) {
    a.focus({ preventScroll: true });
    navigate(url.pathname + url.search, { keepFocus: true });
    return;
  }
  navigate(url.pathname + url.search).then(() => {
    if (document.activeElement?.id === 'token') return;
    const h1 = root.querySelector('h1');
    if (h1) h1.focus({ preventScroll: true });
  });
});
window.addEventListener('popstate', () => render());
learnAccess().then(() => render());
