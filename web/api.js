// The JSON API of `projsync serve` (docs/api.md), as small async functions. Errors become
// ApiError with the server's code and message, so views can show them as they are.

const ROOT = '/api/v1';

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

const enc = encodeURIComponent;

// A file's path for ?path=: a listing or change entry ({path, path_raw}) or a plain string. A
// name that is not UTF-8 shows U+FFFD in `path`, which names no file; its `path_raw` (the exact
// bytes, already percent-encoded) does (docs/api.md).
const pathQ = (p) => (typeof p === 'object' && p ? p.path_raw || enc(p.path) : enc(p));

// A server bound beyond loopback needs a bearer token (docs/api.md); the page keeps one the
// user typed in this tab only.
export function setToken(token) {
  if (token) sessionStorage.setItem('projsync.token', token);
  else sessionStorage.removeItem('projsync.token');
}

// Whether this tab holds a token (to tell "no token" from "a token the server refused").
export function hasToken() {
  return Boolean(sessionStorage.getItem('projsync.token'));
}

function headers(extra) {
  const h = { Accept: 'application/json', ...extra };
  const token = sessionStorage.getItem('projsync.token');
  if (token) h.Authorization = `Bearer ${token}`;
  return h;
}

async function request(method, path, body) {
  let res;
  try {
    res = await fetch(ROOT + path, {
      method,
      headers: headers(body === undefined ? {} : { 'Content-Type': 'application/json' }),
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    throw new ApiError(0, 'network', 'The server cannot be reached. Is `projsync serve` running?');
  }
  return res;
}

async function fail(res) {
  let code = 'http_' + res.status;
  let message = `${res.status} ${res.statusText}`;
  try {
    const j = await res.json();
    if (j && j.error) ({ code, message } = j.error);
  } catch { /* not JSON: keep the status line */ }
  return new ApiError(res.status, code, message);
}

async function json(method, path, body) {
  const res = await request(method, path, body);
  if (!res.ok) throw await fail(res);
  const data = res.status === 204 ? null : await res.json();
  // Lists page with GitHub's Link header: hand the next cursor to whoever wants more.
  const link = res.headers.get('Link');
  if (Array.isArray(data) && link) {
    const m = /<([^>]*)>;\s*rel="next"/.exec(link);
    if (m) Object.defineProperty(data, 'next', { value: m[1].replace(/^\/api\/v1/, '') });
  }
  // Code search says when its index could not narrow the search (every file was read).
  const note = res.headers.get('X-Projsync-Note');
  if (Array.isArray(data) && note) Object.defineProperty(data, 'note', { value: note });
  return data;
}

export const api = {
  whoami: () => json('GET', '/whoami'),
  projects: () => json('GET', '/projects'),
  addProject: (p) => json('POST', '/projects', p),
  project: (name) => json('GET', `/projects/${enc(name)}`),
  patchProject: (name, changes) => json('PATCH', `/projects/${enc(name)}`, changes),
  deleteProject: (name) => json('DELETE', `/projects/${enc(name)}`),
  branches: (name) => json('GET', `/projects/${enc(name)}/branches`),
  syncStatus: (name) => json('GET', `/projects/${enc(name)}/sync`),
  resume: (name) => json('POST', `/projects/${enc(name)}/resume`),
  startSync: (name, branch) => json('POST', `/projects/${enc(name)}/sync`, branch ? { branch } : {}),
  syncs: (name, limit = 30) => json('GET', `/projects/${enc(name)}/syncs?limit=${limit}`),
  more: (next) => json('GET', next),
  sync: (id) => json('GET', `/syncs/${enc(id)}`),
  cancelSync: (id) => json('POST', `/syncs/${enc(id)}/cancel`),
  // Content diff of one path (a string or a change entry) from sync `a` to sync `b` (JSON with
  // hunks, docs/api.md).
  diff: (a, b, path) => json('GET', `/syncs/${enc(a)}/diff/${enc(b)}?patch=1&path=${pathQ(path)}`),
  changes: (id) => json('GET', `/syncs/${enc(id)}/changes`),
  // What changed from sync `a` to sync `b` ([change]; `a` newer than `b`: the way back).
  compare: (a, b) => json('GET', `/syncs/${enc(a)}/diff/${enc(b)}`),
  commits: (id) => json('GET', `/syncs/${enc(id)}/commits`),
  // `prefix`: a folder's path, or {raw} (its bytes percent-encoded) for a name that is not UTF-8.
  files: (name, at, prefix) => json('GET', `/projects/${enc(name)}/files?at=${enc(at)}` +
    (prefix ? `&prefix=${typeof prefix === 'object' ? prefix.raw : enc(prefix)}` : '')),
  // One page of `git grep -n`-like matches in a snapshot; `.next` goes to api.more, `.note`
  // is the server's word when the code index could not narrow the search.
  searchCode: (name, { at, q, regex, ignore_case, path, limit }) => json('GET', `/projects/${enc(name)}/search/code?q=${enc(q)}` +
    (at ? `&at=${enc(at)}` : '') + (regex ? '&regex=true' : '') + (ignore_case ? '&ignore_case=true' : '') +
    (path ? `&path=${enc(path)}` : '') + (limit ? `&limit=${limit}` : '')),
  // One page of entries; `.next` (when there are more) goes to api.more.
  memory: (name, q, superseded, limit = 200) => json('GET', `/projects/${enc(name)}/memory?limit=${limit}` +
    (q ? `&q=${enc(q)}` : '') + (superseded ? '&include_superseded=true' : '')),
  addMemory: (name, note) => json('POST', `/projects/${enc(name)}/memory`, note),
  memoryHistory: (id) => json('GET', `/memory/${enc(id)}/history`),
  restoreMemory: (id) => json('POST', `/memory/${enc(id)}/restore`),
  editMemory: (id, changes) => json('PATCH', `/memory/${enc(id)}`, changes),
  deleteMemory: (id) => json('DELETE', `/memory/${enc(id)}`),

  // A file's raw bytes and what the headers say about it (`path`: a string or a listing entry).
  async file(name, path, at) {
    const res = await request('GET', `/projects/${enc(name)}/file?path=${pathQ(path)}&at=${enc(at)}`);
    if (!res.ok) throw await fail(res);
    return { bytes: new Uint8Array(await res.arrayBuffer()), sha: res.headers.get('X-Projsync-Sha'),
      mode: res.headers.get('X-Projsync-Mode'), type: res.headers.get('Content-Type') };
  },

  // EventSource cannot send an Authorization header: the token goes in the query instead.
  eventsUrl: (syncId, lastEventId) => {
    const q = [];
    if (lastEventId) q.push(`last_event_id=${enc(lastEventId)}`);
    const token = sessionStorage.getItem('projsync.token');
    if (token) q.push(`access_token=${enc(token)}`);
    return `${ROOT}/events/project-sync/${enc(syncId)}` + (q.length ? `?${q.join('&')}` : '');
  },
};
