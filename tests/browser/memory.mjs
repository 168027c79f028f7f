// Memory: search shows highlighted snippets (the match marked, everything else plain text),
// "show superseded" brings older versions, an entry lists its versions, and Restore makes a
// superseded version the active one. A search that finds nothing active says to look among the
// superseded entries too.
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { run, cfg, BASE, check, shot, api, git, waitSync } from './lib.mjs';

const NOTE = path.join(cfg.repo, '.memory', 'deploy.md');
const V1 = '---\ntitle: Deploying\ntags: [ops, release]\n---\nDeploy <img src=x onerror=alert(1)> with the blue-green switch & <b>care</b>.\n';
const V2 = '---\ntitle: Deploying\ntags: [ops]\n---\nDeploy by hand now; the switch is gone.\n';

async function sync() {
  const r = await api('POST', '/projects/notes/sync', {});
  check(r.status === 202, `sync started: ${JSON.stringify(r.body)}`);
  check((await waitSync(r.body.id)).status === 'succeeded', 'sync succeeded');
}

run('memory', async (b) => {
  writeFileSync(NOTE, V1);
  git(cfg.repo, 'add', '-A');
  git(cfg.repo, 'commit', '-qm', 'v1');
  check((await api('POST', '/projects', { name: 'notes', source: cfg.repo })).status === 201, 'project added');
  await sync();
  writeFileSync(NOTE, V2);
  git(cfg.repo, 'commit', '-qam', 'v2');
  await sync();

  const page = await b.page('memory');
  await page.goto(BASE + '/projects/notes/memory');
  const entries = page.locator('.memory-entry');
  await entries.first().waitFor();
  check(await entries.count() === 1, 'one active entry');
  check((await entries.first().textContent()).includes('by hand'), 'the active entry is the latest version');
  await shot(page, '40-memory-active');

  // Search, with the keyboard.
  await page.getByLabel('Search memory').fill('deploy');
  await page.getByLabel('Search memory').press('Enter');
  await page.waitForURL(/\?q=deploy$/);
  await page.locator('.memory-entry .snippet mark').first().waitFor();
  check((await page.locator('.snippet mark').first().textContent()).toLowerCase() === 'deploy', 'the match is marked');
  check(await page.getByLabel('Search memory').evaluate((el) => el === document.activeElement), 'focus stays in the search box');

  // A word only the superseded version has: nothing active matches, and the page says where
  // else to look.
  await page.getByLabel('Search memory').fill('blue-green');
  await page.getByLabel('Search memory').press('Enter');
  await page.locator('.memory-results .empty', { hasText: 'Show superseded entries' }).waitFor();
  await page.getByLabel('Show superseded entries').check();
  await page.locator('.memory-entry[data-status=superseded]').waitFor();
  await page.getByLabel('Show superseded entries').uncheck();
  await page.locator('.memory-results .empty').waitFor();
  await page.getByLabel('Search memory').fill('deploy');
  await page.getByLabel('Search memory').press('Enter');
  await page.waitForURL(/\?q=deploy$/);
  await page.locator('.memory-entry .snippet mark').first().waitFor();

  // Show superseded: the first version too, its markup shown as text.
  await page.getByLabel('Show superseded entries').check();
  await page.waitForURL(/superseded=1/);
  await page.locator('.memory-entry[data-status=superseded]').waitFor();
  check(await entries.count() === 2, 'active + superseded');
  const old = page.locator('.memory-entry[data-status=superseded]');
  const snippet = await old.locator('.snippet').textContent();
  check(snippet.includes('<img src=x onerror=alert(1)>') && snippet.includes('<b>care</b>'), `snippet text as is: ${snippet}`);
  check(await page.locator('.memory-results img, .memory-results b').count() === 0, 'no element made from entry text');
  check(await old.locator('mark').count() >= 1, 'marks kept in the superseded snippet');
  await shot(page, '41-memory-search-superseded');

  // Versions of the active entry: two, the older superseded with a Restore button.
  const active = page.locator('.memory-entry[data-status=active]');
  await active.getByRole('button', { name: 'Versions' }).click();
  check(await active.getByRole('button', { name: 'Versions' }).getAttribute('aria-expanded') === 'true', 'expanded');
  await active.locator('.version').nth(1).waitFor();
  check(await active.locator('.version').count() === 2, 'two versions');
  check(await active.locator('.version[data-status=superseded] .restore').count() === 1, 'restore on the superseded version');
  await shot(page, '42-memory-versions');

  // Restore the superseded one (from its own card).
  const oldId = await old.getAttribute('data-entry-id');
  await old.getByRole('button', { name: /^Restore/ }).click();
  await page.getByText(/Restored: entry #\d+ is now the active version/).waitFor();
  const nowActive = page.locator('.memory-entry[data-status=active]');
  check(await nowActive.count() === 1, 'one active entry after the restore');
  const txt = await nowActive.textContent();
  check(txt.includes(`restored from #${oldId}`) && txt.includes('blue-green'), `restored copy is active: ${txt}`);
  check(await page.locator('.memory-entry[data-status=superseded]').count() === 2, 'both older versions superseded');
  await shot(page, '43-memory-restored');

  // And the API agrees.
  const list = await api('GET', '/projects/notes/memory');
  check(list.body.length === 1 && list.body[0].content.includes('blue-green') && String(list.body[0].restored_from) === oldId,
    `API: ${JSON.stringify(list.body)}`);

  // Phone width.
  const phone = await b.page('memory-phone', { width: 390, height: 844 });
  await phone.goto(BASE + '/projects/notes/memory?q=deploy&superseded=1');
  await phone.locator('.memory-entry').first().waitFor();
  check(await phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth) <= 0, 'no horizontal scroll');
  await shot(phone, '44-memory-phone');
});
