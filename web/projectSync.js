// The live state of one sync, fed by its server-sent event stream (docs/api.md, "Live progress"): the role a
// `useProjectSync(syncId)` hook plays in a framework. Components call useProjectSync(id) and
// subscribe(fn); fn gets the state now and on every change. All subscribers of one sync share
// one EventSource, closed when the last one unsubscribes.
//
// The stream replays every stored event from seq 1 on connect, so a page opened mid-sync
// shows the phases already done. After a drop, EventSource reconnects by itself and sends
// Last-Event-ID; when it gives up (the server answered an error, or restarted), we reconnect
// ourselves with ?last_event_id=<last seq seen>, backing off. Either way the state survives,
// and an event whose seq we have already applied (a replay overlapping what we saw) is ignored,
// so counters never run backwards and nothing is applied twice.

import { api } from './api.js';

export const FINAL = new Set(['succeeded', 'failed', 'cancelled']);
const KINDS = ['queued', 'phase', 'progress', 'warning', 'succeeded', 'failed', 'cancelled'];

function initialState(syncId) {
  return {
    syncId,
    status: 'connecting',      // connecting | queued | running | succeeded | failed | cancelled
    connection: 'connecting',  // connecting | open | reconnecting | closed
    phase: 'none',
    phaseIndex: 0,
    phaseCount: 5,
    fraction: 0,
    filesDone: 0,
    filesTotal: 0,
    bytes: 0,
    requests: 0,
    elapsedMs: 0,
    receivedAt: 0,             // performance.now() of the last event, to tick elapsed between events
    lastSeq: 0,
    warnings: [],
    summary: null,             // the sync object of the final event
    error: null,               // {phase, code, message} of a failed or cancelled sync
  };
}

// The state a finished (or not yet streamed) sync object implies, with no stream: what the
// banner shows for the last sync when nothing runs.
export function stateFromSync(sync) {
  const st = initialState(sync.id);
  const idx = Math.max(0, ['none', 'prepare', 'scan', 'fetch', 'import', 'finalize'].indexOf(sync.phase));
  Object.assign(st, {
    status: sync.status,
    connection: 'closed',
    phase: sync.phase,
    phaseIndex: idx,
    fraction: sync.status === 'succeeded' ? 1 : 0,
    filesDone: sync.counts ? sync.counts.files : 0,
    filesTotal: sync.counts ? sync.counts.files : 0,
    bytes: sync.bytes || 0,
    requests: sync.requests || 0,
    elapsedMs: sync.started_at && sync.finished_at
      ? Date.parse(sync.finished_at) - Date.parse(sync.started_at) : 0,
    summary: FINAL.has(sync.status) ? sync : null,
    error: sync.error ? { phase: sync.phase, ...sync.error } : null,
  });
  return st;
}

// Elapsed time now: the last event's figure plus the time since it arrived, while running.
export function liveElapsed(st, now = performance.now()) {
  if (st.status !== 'running' || !st.receivedAt) return st.elapsedMs;
  return st.elapsedMs + Math.max(0, now - st.receivedAt);
}

export class ProjectSync {
  constructor(syncId, { EventSourceImpl = globalThis.EventSource } = {}) {
    this.syncId = syncId;
    this.state = initialState(syncId);
    this.subscribers = new Set();
    this.EventSourceImpl = EventSourceImpl;
    this.es = null;
    this.retryMs = 1000;
    this.retryTimer = null;
    this.closed = false;
    this.open(0);
  }

  subscribe(fn) {
    this.subscribers.add(fn);
    fn(this.state);
    return () => {
      this.subscribers.delete(fn);
      if (this.subscribers.size === 0) this.release();
    };
  }

  // Stops streaming for good (all subscribers gone).
  release() {
    this.closed = true;
    clearTimeout(this.retryTimer);
    if (this.es) this.es.close();
    this.es = null;
    registry.delete(this.syncId);
  }

  set(patch) {
    this.state = { ...this.state, ...patch };
    for (const fn of [...this.subscribers]) fn(this.state);
  }

  open(lastSeq) {
    if (this.closed) return;
    const es = new this.EventSourceImpl(api.eventsUrl(this.syncId, lastSeq));
    this.es = es;
    es.onopen = () => {
      this.retryMs = 1000;
      this.set({ connection: 'open' });
    };
    for (const kind of KINDS) es.addEventListener(kind, (ev) => this.onEvent(kind, ev));
    es.onerror = () => {
      if (this.closed || es !== this.es) return;
      if (FINAL.has(this.state.status)) {
        es.close();
        return;
      }
      if (es.readyState === es.CONNECTING) {
        // EventSource reconnects by itself, sending Last-Event-ID.
        this.set({ connection: 'reconnecting' });
        return;
      }
      // It gave up: reconnect ourselves from the last seq we applied, and meanwhile ask the
      // sync itself, in case it ended while we were away.
      es.close();
      this.set({ connection: 'reconnecting' });
      this.retryTimer = setTimeout(() => this.recover(), this.retryMs);
      this.retryMs = Math.min(this.retryMs * 2, 10000);
    };
  }

  async recover() {
    if (this.closed) return;
    try {
      // A sync that ended meanwhile still replays its final event on the new stream; one
      // that is gone for good (project removed) will never stream again.
      await api.sync(this.syncId);
    } catch (e) {
      if (e.status === 404) {
        this.set({ status: 'failed', connection: 'closed',
          error: { phase: this.state.phase, code: e.code, message: e.message } });
        return;
      }
    }
    this.open(this.state.lastSeq);
  }

  onEvent(kind, ev) {
    let d;
    try {
      d = JSON.parse(ev.data);
    } catch {
      return;
    }
    const seq = Number(d.seq ?? ev.lastEventId);
    if (!(seq > this.state.lastSeq)) return; // already applied (a replay after reconnecting)
    const patch = {
      lastSeq: seq,
      receivedAt: performance.now(),
      phase: d.phase ?? this.state.phase,
      phaseIndex: d.phase_index ?? this.state.phaseIndex,
      phaseCount: d.phase_count ?? this.state.phaseCount,
      fraction: d.fraction ?? this.state.fraction,
      filesDone: d.files_done ?? this.state.filesDone,
      filesTotal: d.files_total ?? this.state.filesTotal,
      bytes: d.bytes ?? this.state.bytes,
      requests: d.requests ?? this.state.requests,
      elapsedMs: d.elapsed_ms ?? this.state.elapsedMs,
    };
    if (kind === 'queued') {
      patch.status = 'queued';
    } else if (kind === 'phase' || kind === 'progress') {
      patch.status = 'running';
    } else if (kind === 'warning') {
      patch.warnings = [...this.state.warnings, d.message || 'warning'];
    } else if (FINAL.has(kind)) {
      const s = d.summary || null;
      patch.status = kind;
      patch.summary = s;
      patch.connection = 'closed';
      if (kind === 'succeeded') patch.fraction = 1;
      else patch.error = {
        phase: (s && s.phase) || d.phase,
        code: (s && s.error && s.error.code) || kind,
        message: d.message || (s && s.error && s.error.message) || kind,
      };
      // The server ends the stream after this; without close() EventSource would reconnect.
      this.es.close();
    }
    this.set(patch);
  }
}

const registry = new Map();

// The shared live state of sync `syncId` (one stream per sync, however many components).
export function useProjectSync(syncId) {
  let ps = registry.get(syncId);
  if (!ps) {
    ps = new ProjectSync(syncId);
    registry.set(syncId, ps);
  }
  return ps;
}
