// A project whose repository is empty (no commit, no branch): its first sync succeeded with an
// empty snapshot. The page says the repository was empty, not that no commits were recorded
// (which reads as lost data), on the sync's page, in the history and in the banner after Sync
// Now.
import { run, cfg, BASE, check, shot, api, waitSync } from './lib.mjs';

run('empty_repo', async (b) => {
  const page = await b.page('empty-repo');
  const p = encodeURIComponent(cfg.project);
  await page.goto(`${BASE}/projects/${p}/syncs/${cfg.first}`);
  const note = page.locator('.commits-note');
  await note.waitFor();
  const said = await note.textContent();
  check(!/recorded/i.test(said), `not "no commits recorded": ${said}`);
  check(/repository was empty/.test(said) && /no commits/.test(said) && /Push a first commit/.test(said),
    `it says the repository was empty and what to do: ${said}`);
  const commit = await page.locator('.facts div', { has: page.locator('dt', { hasText: 'Commit' }) }).locator('dd').textContent();
  check(/empty/.test(commit), `the commit fact says why there is none: ${commit}`);
  const changes = await page.locator('section', { has: page.locator('#changes-title') }).textContent();
  check(/repository was empty/.test(changes), `the changes say so too: ${changes}`);
  await shot(page, 'empty-10-first-sync');

  await page.goto(`${BASE}/projects/${p}/history`);
  const row = page.locator(`li.sync-row[data-sync-id="${cfg.first}"]`);
  await row.waitFor();
  check((await row.textContent()).includes('empty repository'), `the history row says empty repository: ${await row.textContent()}`);

  // Sync Now again: the banner says the repository is still empty (not "Commit —").
  await page.goto(`${BASE}/projects/${p}`);
  await page.locator('#sync-now:enabled').click();
  await page.locator('.banner[data-status=succeeded]').waitFor();
  const banner = await page.locator('.banner .outcome').textContent();
  check(/empty/.test(banner) && !banner.includes('Commit —'), `the banner says the repository is empty: ${banner}`);
  const last = (await api('GET', `/projects/${p}/sync`)).body.last_sync;
  check((await waitSync(last.id)).commit === null, 'the sync found no commit');
  await shot(page, 'empty-20-banner');
});
