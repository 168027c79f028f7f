// Small formatting helpers shared by the views: times, durations, sizes, commits.

export const PHASES = ['prepare', 'scan', 'fetch', 'import', 'finalize'];

export function shortSha(sha) {
  return sha ? String(sha).slice(0, 7) : '—';
}

export function bytes(n) {
  if (n === null || n === undefined) return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = Number(n), i = 0;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return i === 0 ? `${v} B` : `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

export function duration(ms) {
  if (ms === null || ms === undefined || !isFinite(ms) || ms < 0) return '—';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${Math.round(s % 60)} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

// "3 min ago"; the exact time goes into a <time> element's title by the caller.
export function ago(iso, now = Date.now()) {
  if (!iso) return '—';
  const t = Date.parse(iso);
  if (isNaN(t)) return iso;
  const s = Math.round((now - t) / 1000);
  if (s < 5) return 'just now';
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return new Date(t).toLocaleDateString();
}

// "in 4 min", "due now": when a future time comes.
export function until(iso, now = Date.now()) {
  if (!iso) return '—';
  const t = Date.parse(iso);
  if (isNaN(t)) return iso;
  const s = Math.round((t - now) / 1000);
  if (s <= 0) return 'due now';
  if (s < 60) return `in ${s} s`;
  if (s < 3600) return `in ${Math.floor(s / 60)} min`;
  if (s < 86400) return `in ${Math.floor(s / 3600)} h`;
  return new Date(t).toLocaleString();
}

// "up to date · checked 360 times, 10:02–11:02": a history row that stands for a run of
// up-to-date scheduled checks (the sync's `checks` and `first_checked_at`).
export function checksNote(s) {
  if (!s || !(s.checks > 1)) return 'up to date';
  const first = new Date(s.first_checked_at), last = new Date(s.finished_at);
  const sameDay = first.toDateString() === last.toDateString();
  const hm = (d) => d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  const from = sameDay ? hm(first) : `${first.toLocaleDateString()} ${hm(first)}`;
  const to = sameDay ? hm(last) : `${last.toLocaleDateString()} ${hm(last)}`;
  return `up to date · checked ${s.checks} times, ${from}–${to}`;
}

// What an up-to-date sync's row says. A prune made a first kept sync the first of the history,
// so its counts are its whole snapshot and a bare "up to date" beside "+N" read as a
// contradiction: the CLI's words (`history`, `status`) instead.
export const FIRST_KEPT_NOTE = 'first kept sync; up to date when it ran';
export function upToDateNote(s) {
  return s && s.first_kept ? FIRST_KEPT_NOTE : checksNote(s);
}

export function syncDuration(s) {
  if (!s || !s.started_at) return null;
  const end = s.finished_at ? Date.parse(s.finished_at) : Date.now();
  return end - Date.parse(s.started_at);
}

export function plural(n, one, many = one + 's') {
  return `${n} ${n === 1 ? one : many}`;
}
