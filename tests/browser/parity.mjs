// What the CLI can do, the page can do: a sync's changes open their diffs (unified and side by
// side, old and new line numbers, changed words marked, unchanged lines collapsed and
// expandable), memory pages past 200 entries and takes a note by hand, a running sync is
// cancelled from its banner, settings are changed and the project renamed, then deleted after
// typing its name. Each new view is also checked at a phone's width.
import { run, cfg, BASE, check, shot, api, waitSync } from './lib.mjs';

const WIDTH = 390;

async function fits(page, label) {
  const scroll = await page.evaluate(() => document.documentElement.scrollWidth);
  check(scroll <= WIDTH, `${label}: the page is ${scroll}px wide at ${WIDTH}px`);
  await shot(page, `70-phone-${label}`);
}

run('parity', async (b) => {
  const name = cfg.project;
  const page = await b.page('parity');

  // ---- diffs of a sync's changes ----
  await page.goto(`${BASE}/projects/${name}/syncs/${cfg.sync_id}`);
  const open = page.locator('.change-open', { hasText: 'src/long.txt' });
  await open.click();
  const diff = page.locator('.diff');
  await diff.locator('table').waitFor();
  const del = diff.locator('tr.del');
  const add = diff.locator('tr.add');
  check(await del.count() === 2 && await add.count() === 2, 'two lines changed');
  check((await del.first().locator('td.ln').first().textContent()) === '5', 'old line number 5');
  check((await add.first().locator('td.ln').nth(1).textContent()) === '5', 'new line number 5');
  check((await del.first().locator('del').allTextContents()).join('') === '', 'nothing removed from line 5 but spacing');
  check((await add.first().locator('ins').allTextContents()).join('').includes('changed'), 'the added word is marked');
  check((await add.nth(1).locator('ins').allTextContents()).join('').includes('edited'), 'the edit on line 30 is marked');
  // Between the two hunks (lines 9..26 unchanged) a collapsed row expands them.
  check((await diff.locator('tr.gap button').first().textContent()).includes('1 unchanged line'), 'line 1 is collapsed');
  const gap = diff.locator('tr.gap button', { hasText: '18 unchanged lines' });
  check(await gap.count() === 1, 'lines 9 to 26 are collapsed');
  const before = await diff.locator('tr').count();
  await gap.click();
  await diff.locator('tr.expanded').first().waitFor();
  check(await diff.locator('tr').count() > before + 10, 'the unchanged lines are shown');
  const ln12 = diff.locator('tr.expanded', { hasText: 'line 12 of the file' });
  check(await ln12.count() === 1, 'line 12 appears once');
  check((await ln12.locator('td.ln').first().textContent()) === '12', 'with its number');
  await shot(page, '70-diff-unified');
  await diff.locator('.diff-toggle').click();
  await diff.locator('table.diff-split').waitFor();
  check(await diff.locator('table.diff-split tr.chg').count() === 2, 'side by side pairs the changed lines');
  await shot(page, '71-diff-split');

  // A large change (300 lines rewritten, 600 rows) is built in chunks as it is scrolled: the
  // first rows at once, the rest when the "more lines" row comes near the viewport, each with
  // its line numbers and word highlights, in git's order, up to the collapsed end of the file.
  await page.locator('.change-open', { hasText: 'src/big.txt' }).click();
  const big = page.locator('.diff[aria-label="Diff of src/big.txt"]');
  await big.locator('table').waitFor();
  const bigRows = big.locator('tr.del, tr.add');
  check(await bigRows.count() < 600, `the first chunk only (${await bigRows.count()} rows)`);
  check(await big.locator('tr.diff-more').count() === 1, 'a row stands for the lines not built yet');
  for (let i = 0; i < 20 && await big.locator('tr.diff-more').count(); i++) {
    await big.locator('tr.diff-more').scrollIntoViewIfNeeded();
    await page.waitForTimeout(100);
  }
  check(await big.locator('tr.diff-more').count() === 0, 'scrolling builds the rest');
  check(await big.locator('tr.del').count() === 300 && await big.locator('tr.add').count() === 300, 'all 600 rows');
  check((await big.locator('tr.del').nth(299).locator('td.ln').first().textContent()) === '300', 'old line 300');
  const lastAdd = big.locator('tr.add').nth(299);
  check((await lastAdd.locator('td.ln').nth(1).textContent()) === '300', 'new line 300');
  check((await lastAdd.locator('ins').allTextContents()).join('') === 'second', 'its changed word is marked');
  check((await big.locator('tr').nth(300).getAttribute('class')) === 'add', 'the added lines follow the removed ones');
  // Its last hunk ends with a change, at the end of the file: nothing is left to expand.
  check(await big.locator('tr.gap').count() === 0, 'no "to the end" row after the last line');

  // ---- memory: paging past 200, a note by hand ----
  await page.goto(`${BASE}/projects/${name}/memory`);
  await page.locator('.memory-entry').first().waitFor();
  check(await page.locator('.memory-entry').count() === 200, 'the first page holds 200 entries');
  await page.locator('#memory-more').click();
  await page.waitForFunction(() => document.querySelectorAll('.memory-entry').length === 205);
  check(await page.locator('#memory-more').count() === 0, 'no more pages');
  await page.locator('.add-note summary').click();
  await page.getByLabel('Title').fill('Written on the page');
  await page.getByLabel('Text (markdown)').fill('Some *text*.');
  await page.getByLabel('Tags').fill('web, manual');
  await page.locator('#add-note button[type=submit]').click();
  await page.locator('.notice-info', { hasText: 'Added note' }).waitFor();
  check((await page.locator('.memory-entry h3').first().textContent()) === 'Written on the page', 'the note is listed first');
  const stored = await api('GET', `/projects/${name}/memory?q=Written`);
  check(stored.body.length === 1 && stored.body[0].tags.join() === 'web,manual', 'the note is stored with its tags');

  // ---- cancel a running sync from the banner ----
  const started = await api('POST', `/projects/${name}/sync`, {});
  check(started.status === 202, 'a sync started');
  await page.goto(`${BASE}/projects/${name}`);
  await page.locator('#cancel-sync').click();
  await page.waitForSelector('.banner[data-status=cancelled]', { timeout: 30000 });
  check((await waitSync(started.body.id)).status === 'cancelled', 'the sync ended cancelled');

  // ---- settings ----
  await page.goto(`${BASE}/projects/${name}/settings`);
  await page.getByLabel('Size limit (bytes)').fill('1000');
  await page.getByLabel('Memory globs').fill('notes/*.md\ndocs/**/*.md');
  await page.locator('#project-settings button[type=submit]').click();
  await page.locator('#project-settings .notice-info').waitFor();
  let p = (await api('GET', `/projects/${name}`)).body;
  check(p.max_blob_size === 1000 && p.memory_globs.join() === 'notes/*.md,docs/**/*.md', 'settings stored');
  // A branch the source does not have cannot even be chosen; a bad source is refused as the API says.
  await page.getByLabel('Source', { exact: true }).fill(`${cfg.repo}-nonexistent`);
  // Another repository is refused for a project with history (409) ...
  await b.expecting([/409/], async () => {
    await page.locator('#project-settings button[type=submit]').click();
    await page.locator('#project-settings .notice-error', { hasText: 'history' }).waitFor();
  });
  // ... and, when asked to continue the history from it, checked like a new source (422).
  await page.getByLabel('Continue this project’s history from another repository').check();
  await b.expecting([/422/], async () => {
    await page.locator('#project-settings button[type=submit]').click();
    await page.locator('#project-settings .notice-error', { hasText: 'nonexistent' }).waitFor();
  });
  check((await api('GET', `/projects/${name}`)).body.source === cfg.repo, 'the source is unchanged');
  await page.getByLabel('Source', { exact: true }).fill(cfg.repo);
  await page.getByLabel('Name').fill('renamed');
  await page.locator('#project-settings button[type=submit]').click();
  await page.waitForURL(/\/projects\/renamed\/settings/);
  check((await api('GET', '/projects/renamed')).status === 200, 'renamed');
  await shot(page, '72-settings');

  // ---- phone width: the new views ----
  const phone = await b.page('parity-phone', { width: WIDTH, height: 844 });
  await phone.goto(`${BASE}/projects/renamed/settings`);
  await phone.locator('#project-settings').waitFor();
  await fits(phone, 'settings');
  await phone.goto(`${BASE}/projects/renamed/memory`);
  await phone.locator('.memory-entry').first().waitFor();
  await phone.locator('.add-note summary').click();
  await fits(phone, 'memory-add');
  await phone.goto(`${BASE}/projects/renamed/syncs/${cfg.sync_id}`);
  await phone.locator('.change-open', { hasText: 'src/long.txt' }).click();
  await phone.locator('.diff table').waitFor();
  await fits(phone, 'diff');
  await phone.locator('.diff-toggle').click();
  await phone.locator('table.diff-split').waitFor();
  await fits(phone, 'diff-split');
  await phone.goto(`${BASE}/projects/renamed`);
  await phone.locator('.banner').waitFor();
  await fits(phone, 'overview');

  // ---- delete, after typing the name ----
  await page.goto(`${BASE}/projects/renamed/settings`);
  const delBtn = page.locator('#delete-project');
  check(await delBtn.isDisabled(), 'delete waits for the confirmation');
  await page.getByLabel('Type “renamed” to confirm').fill('renamed');
  await delBtn.click();
  await page.waitForURL((u) => u.pathname === '/');
  check((await api('GET', '/projects/renamed')).status === 404, 'deleted');
});
