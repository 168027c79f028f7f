// A prune made an up-to-date sync the first of the history: its counts are its whole snapshot.
// The page says what the CLI says ("first kept sync; up to date when it ran") beside them, in
// the history row and on the sync's page, not a bare "up to date" beside "+2"; a later
// up-to-date sync still reads "up to date".
import { run, cfg, BASE, check, shot } from './lib.mjs';

const NOTE = 'first kept sync; up to date when it ran';

run('first_kept', async (b) => {
  const page = await b.page('first-kept');
  const p = encodeURIComponent(cfg.project);
  await page.goto(`${BASE}/projects/${p}/history`);
  const kept = page.locator(`li.sync-row[data-sync-id="${cfg.kept}"]`);
  await kept.waitFor();
  const row = await kept.locator('.sync-row-meta').textContent();
  check(row.includes(NOTE), `the first kept sync's row has the CLI's note: ${row}`);
  check((await kept.locator('.count.added').textContent()) === '+2', `and its counts: ${row}`);
  const later = await page.locator(`li.sync-row[data-sync-id="${cfg.later}"] .sync-row-meta`).textContent();
  check(later.includes('up to date') && !later.includes('first kept'), `a later up-to-date sync is just up to date: ${later}`);
  await shot(page, 'first-kept-10-history');

  await page.goto(`${BASE}/projects/${p}/syncs/${cfg.kept}`);
  const note = page.locator('.sync-detail .first-kept');
  await note.waitFor();
  const said = await note.textContent();
  check(said.includes(NOTE) && /whole snapshot/.test(said), `the sync's page says why its changes are all added: ${said}`);
  await page.locator('ul.changes li.change').first().waitFor();
  check(await page.locator('ul.changes li.change[data-status=added]').count() === 2, 'its changes: the 2 files, added');
  await shot(page, 'first-kept-20-sync');

  await page.goto(`${BASE}/projects/${p}/syncs/${cfg.later}`);
  await page.locator('.commits-note').waitFor();
  check(await page.locator('.first-kept').count() === 0, 'a later up-to-date sync has no such note');
});
