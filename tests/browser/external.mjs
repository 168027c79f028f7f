// A sync started elsewhere (here: through the API) is picked up by an open overview: Sync Now
// is disabled while it runs and the banner follows it; a page opened mid-sync shows it at
// once. And projectSync.js itself: after a dropped stream it reconnects from the last seq and
// ignores replayed events.
import { run, cfg, BASE, check, shot, api, waitSync } from './lib.mjs';

run('external', async (b) => {
  check((await api('POST', '/projects', { name: 'shared', source: cfg.repo })).status === 201, 'project added');
  const first = await api('POST', '/projects/shared/sync', {});
  await waitSync(first.body.id);

  const page = await b.page('external');
  await page.goto(BASE + '/projects/shared');
  const syncNow = page.getByRole('button', { name: 'Sync Now' });
  await page.locator('#sync-now:enabled').waitFor();
  await page.waitForSelector('.banner[data-status=succeeded]');

  const started = await api('POST', '/projects/shared/sync', { branch: 'feature' });
  check(started.status === 202, 'sync started through the API');
  const t0 = Date.now();
  await page.locator('#sync-now:disabled').waitFor({ timeout: 5000 });
  check(Date.now() - t0 < 4000, 'picked up within a poll or two');
  await page.waitForSelector(`.banner[data-status=running]`);
  check((await page.locator('.banner h2').textContent()).includes(`#${started.body.id}`), 'the banner follows that sync');
  check(await syncNow.isDisabled(), 'Sync Now disabled while it runs');
  check((await page.locator('#sync-hint').textContent()).includes('running'), 'and says why');
  await shot(page, '30-overview-external-running');

  // A page opened mid-sync shows it at once, with the phases already done.
  const late = await b.page('late');
  await late.goto(BASE + '/projects/shared');
  await late.waitForSelector('.banner[data-status=running] .phase[data-state=done]');
  check(await late.getByRole('button', { name: 'Sync Now' }).isDisabled(), 'disabled in the late page too');

  // A second start from the API while one runs is refused; the page is unaffected.
  check((await api('POST', '/projects/shared/sync', {})).status === 409, '409 while running');

  await waitSync(started.body.id);
  await page.waitForSelector('.banner[data-status=succeeded]');
  await page.locator('#sync-now:enabled').waitFor();
  await late.locator('#sync-now:enabled').waitFor();

  // projectSync.js with a scripted EventSource: a drop, a reconnect from the last seq, replays.
  const result = await page.evaluate(async (syncId) => {
    const { ProjectSync } = await import('/assets/projectSync.js');
    const made = [];
    class FakeES {
      constructor(url) { this.url = url; this.readyState = 0; this.listeners = {}; made.push(this); }
      addEventListener(kind, fn) { (this.listeners[kind] ||= []).push(fn); }
      close() { this.readyState = 2; this.closed = true; }
      emit(kind, d) {
        (this.listeners[kind] || []).forEach((fn) => fn({ data: JSON.stringify({ sync_id: syncId, kind, phase_count: 5, ...d }), lastEventId: String(d.seq) }));
      }
    }
    FakeES.prototype.CONNECTING = 0; FakeES.prototype.OPEN = 1; FakeES.prototype.CLOSED = 2;
    const ps = new ProjectSync(syncId, { EventSourceImpl: FakeES });
    const seen = [];
    ps.subscribe((st) => seen.push({ status: st.status, phase: st.phase, files: st.filesDone, seq: st.lastSeq, conn: st.connection }));
    let es = made[0];
    es.readyState = 1; es.onopen();
    es.emit('queued', { seq: 1, phase: 'none', phase_index: 0, fraction: 0 });
    es.emit('phase', { seq: 2, phase: 'prepare', phase_index: 1, fraction: 0 });
    es.emit('phase', { seq: 3, phase: 'scan', phase_index: 2, fraction: 0.05, files_done: 2, files_total: 4 });
    // The browser's own reconnect (CONNECTING) replays an overlap: ignored.
    es.readyState = 0; es.onerror();
    const connDuring = ps.state.connection;
    es.readyState = 1;
    es.emit('phase', { seq: 2, phase: 'prepare', phase_index: 1, fraction: 0, files_done: 0 });
    es.emit('progress', { seq: 4, phase: 'scan', phase_index: 2, fraction: 0.1, files_done: 3, files_total: 4 });
    // Then it gives up (CLOSED): we reconnect ourselves with ?last_event_id.
    es.readyState = 2; es.onerror();
    await new Promise((r) => setTimeout(r, 1500));
    es = made[made.length - 1];
    const url2 = es.url;
    es.readyState = 1; es.onopen();
    es.emit('progress', { seq: 3, phase: 'scan', phase_index: 2, files_done: 1 });
    es.emit('phase', { seq: 5, phase: 'fetch', phase_index: 3, fraction: 0.3, files_done: 4, files_total: 4 });
    es.emit('succeeded', { seq: 6, phase: 'finalize', phase_index: 5, fraction: 1, files_done: 4, files_total: 4,
      summary: { id: syncId, status: 'succeeded', counts: { added: 1, modified: 0, deleted: 0, renamed: 0, files: 4 } } });
    const st = ps.state;
    return { made: made.length, url2, connDuring, seen, final: { status: st.status, seq: st.lastSeq, files: st.filesDone,
      closed: es.closed, summary: st.summary && st.summary.id } };
  }, started.body.id);
  check(result.made === 2, `one manual reconnect: ${JSON.stringify(result)}`);
  check(result.url2.endsWith(`/events/project-sync/${started.body.id}?last_event_id=4`), `reconnect from seq 4: ${result.url2}`);
  check(result.connDuring === 'reconnecting', 'state says reconnecting');
  const seqs = result.seen.map((s) => s.seq);
  check(seqs.every((s, i) => i === 0 || s >= seqs[i - 1]), `seqs never go back: ${seqs}`);
  check(result.seen.every((s, i) => i === 0 || s.files >= result.seen[i - 1].files), 'a replay never moves counters back');
  check(result.final.status === 'succeeded' && result.final.seq === 6 && result.final.files === 4 && result.final.closed &&
    result.final.summary === started.body.id, `final state: ${JSON.stringify(result.final)}`);
});
