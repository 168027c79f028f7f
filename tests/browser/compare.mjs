// Comparing two syncs (compare.js): ticked in History, from a sync's page, or picked; the
// changed files with counts, each one's diff with an address that opens it again, the way
// back (base newer than target), the same sync twice, a failed sync, one not in the store, and
// many changes a page at a time (a sync's own page too). Everything from the keyboard, the focus never left on <body>.
import { run, cfg, BASE, check, shot, api, waitSync, git } from './lib.mjs';

run('compare', async (b) => {
  const page = await b.page('compare');
  const p = encodeURIComponent(cfg.project);
  const { s1, s2, s3 } = cfg;
  const url = (a, z) => `${BASE}/projects/${p}/compare/${a}..${z}`;
  const active = () => page.evaluate(() => {
    const el = document.activeElement;
    return { tag: el.tagName, id: el.id, text: el.textContent.trim(), expanded: el.getAttribute('aria-expanded') };
  });

  // History: tick two syncs from the keyboard, then Compare.
  await page.goto(`${BASE}/projects/${p}/history`);
  const compareButton = page.locator('#compare-chosen');
  await compareButton.waitFor();
  check(await compareButton.isDisabled(), 'Compare waits for two ticked syncs');
  for (const id of [s2, s3, s1]) {
    await page.locator(`#tick-${id}`).focus();
    await page.keyboard.press('Space');
  }
  // A third tick lets go of the first: the last two are the pair.
  check(!(await page.locator(`#tick-${s2}`).isChecked()), 'the first ticked is let go');
  check((await compareButton.textContent()) === `Compare #${s1} → #${s3}`, `the button names the pair: ${await compareButton.textContent()}`);
  await page.locator(`#tick-${s3}`).focus();
  await page.keyboard.press('Space');
  await page.locator(`#tick-${s2}`).focus();
  await page.keyboard.press('Space');
  check((await compareButton.textContent()) === `Compare #${s1} → #${s2}`, 'older as the base');
  await shot(page, 'compare-05-history-ticked');
  await compareButton.focus();
  await page.keyboard.press('Enter');
  await page.waitForURL(url(s1, s2));
  await page.locator('.compare-summary').waitFor();
  let f = await active();
  check(f.id === 'compare-title', `the focus is on the comparison's title: ${JSON.stringify(f)}`);
  check((await page.title()).startsWith(`Compare #${s1} → #${s2}`), `the title: ${await page.title()}`);

  // The changed files and their counts.
  const summary = await page.locator('.compare-summary').textContent();
  check(summary.includes('5 files changed'), `five files: ${summary}`);
  const counts = await page.locator('.compare-summary .counts').getAttribute('aria-label');
  check(counts === '1 added, 2 modified, 1 deleted, 1 renamed', `counts: ${counts}`);
  const rows = page.locator('ul.compare-changes li.change');
  check(await rows.count() === 5, 'five rows');
  const statusOf = async (text) => page.locator('ul.compare-changes li.change', { hasText: text }).getAttribute('data-status');
  check(await statusOf('c.txt') === 'added' && await statusOf('b.txt') === 'deleted' && await statusOf('a.txt') === 'modified',
    'each file with its status');
  check((await page.locator('li.change[data-status=renamed]').textContent()).includes('old.txt → new.txt'), 'the rename shows both names');

  // A file's diff from the keyboard; the address names it.
  const aOpen = page.locator('li.change', { hasText: 'a.txt' }).locator('button.change-open');
  await aOpen.focus();
  await page.keyboard.press('Enter');
  const aDiff = page.locator('li.change', { hasText: 'a.txt' }).locator('section.diff');
  await aDiff.locator('tr.add').first().waitFor();
  check((await aDiff.locator('tr.del').textContent()).includes('two') && (await aDiff.locator('tr.add').textContent()).includes('TWO'),
    'the diff of a.txt between the two syncs');
  check(page.url() === `${url(s1, s2)}?file=a.txt`, `the address names the file: ${page.url()}`);
  check(await aOpen.getAttribute('aria-expanded') === 'true', 'its button says it is open');
  await shot(page, 'compare-10-file-diff');
  // The address opened anew (shared): that file's diff open, its button focused.
  await page.goto(`${url(s1, s2)}?file=a.txt`);
  await aDiff.locator('tr.add').first().waitFor();
  f = await active();
  check(f.tag === 'BUTTON' && f.text.includes('a.txt') && f.expanded === 'true', `the focus is on its button: ${JSON.stringify(f)}`);
  // A name that is not UTF-8: its address holds its bytes, and opens it.
  await page.locator('li.change', { hasText: 'lat\ufffd.txt' }).locator('button.change-open').click();
  await page.waitForURL(`${url(s1, s2)}?file=lat%E9.txt`);
  await page.locator('li.change', { hasText: 'lat\ufffd.txt' }).locator('section.diff tr.add').first().waitFor();
  // Closing it takes the file out of the address.
  await page.locator('li.change', { hasText: 'lat\ufffd.txt' }).locator('button.change-open').click();
  await page.waitForURL(url(s1, s2));
  await page.goto(`${url(s1, s2)}?file=lat%E9.txt`);
  await page.locator('li.change', { hasText: 'lat\ufffd.txt' }).locator('section.diff tr.add').first().waitFor();
  check((await page.locator('li.change', { hasText: 'lat\ufffd.txt' }).locator('section.diff').textContent()).includes('latin two'), 'its diff');

  // The way back: a base newer than the target is compared as the API answers it.
  await page.goto(url(s2, s1));
  await page.locator('.compare-summary').waitFor();
  check((await page.locator('.compare-backwards').textContent()).includes(`Base #${s2} is newer than target #${s1}`), 'it says so');
  check(await statusOf('c.txt') === 'deleted' && await statusOf('b.txt') === 'added', 'the changes go back');
  check(await page.locator('.compare-backwards a').getAttribute('href') === `/projects/${p}/compare/${s1}..${s2}`, 'a link the other way');
  await shot(page, 'compare-20-backwards');

  // The same sync twice.
  await page.goto(url(s2, s2));
  await page.locator('.compare-result .notice-info').waitFor();
  check((await page.locator('.compare-result').textContent()).includes('compared with itself: nothing differs'), 'the same sync twice');
  check(await page.locator('ul.compare-changes').count() === 0, 'no list');

  // A failed sync (its branch deleted after the project listed it) and one not in the store.
  git(cfg.repo, 'branch', '-D', 'doomed');
  const started = await api('POST', `/projects/${p}/sync`, { branch: 'doomed' });
  check(started.status === 202, `sync started: ${JSON.stringify(started.body)}`);
  check((await waitSync(started.body.id)).status === 'failed', 'the sync failed');
  await page.goto(url(s1, started.body.id));
  const err = page.locator('.compare-result .notice-error');
  await err.waitFor();
  check((await err.textContent()).includes(`Sync #${started.body.id} failed: it made no snapshot`), `a failed sync: ${await err.textContent()}`);
  check(await page.locator('#compare-base').count() === 1, 'the picker stays, to choose again');
  // Removed by the project's retention (keep_syncs 3, then prune).
  await b.expecting([/404/], async () => {
    await page.goto(url(cfg.s0, s1));
    await err.waitFor();
  });
  check((await err.textContent()).includes(`Sync #${cfg.s0} is not in the store`), `a sync not in the store: ${await err.textContent()}`);
  await shot(page, 'compare-30-missing');

  // Many changes: a page at a time; the next page from the keyboard, the focus on its first row.
  await page.goto(url(s2, s3));
  await page.locator('.compare-summary').waitFor();
  check((await page.locator('.compare-summary').textContent()).includes('250 files changed'), '250 files');
  check(await rows.count() === 100, `the first 100: ${await rows.count()}`);
  const more = page.locator('#compare-more');
  check((await more.textContent()) === 'Show 100 more of 150 changes left', `${await more.textContent()}`);
  await more.focus();
  await page.keyboard.press('Enter');
  await rows.nth(199).waitFor();
  f = await active();
  check(f.tag === 'BUTTON' && f.text === (await rows.nth(100).locator('button.change-open').textContent()),
    `the focus is on the first row brought: ${JSON.stringify(f)}`);
  await page.keyboard.press('Enter');
  await rows.nth(100).locator('section.diff').waitFor();
  await more.focus();
  await page.keyboard.press('Enter');
  await rows.nth(249).waitFor();
  check(await more.count() === 0, 'no more to show');
  // A file past the first page, by its address: its page is shown and its diff open.
  await page.goto(`${url(s2, s3)}?file=many%2Ff240.txt`);
  const far = page.locator('li.change', { hasText: 'many/f240.txt' });
  await far.locator('section.diff tr.add').waitFor();
  check((await far.locator('section.diff').textContent()).includes('file 240'), 'its diff');

  // A sync's own page lists its changes the same way: a page at a time, the focus on the first
  // row brought, each row's diff against the sync's base.
  await page.goto(`${BASE}/projects/${p}/syncs/${s3}`);
  const own = page.locator('section[aria-labelledby="changes-title"] ul.changes li.change');
  await own.first().waitFor();
  check(await own.count() === 100, `the sync's first 100: ${await own.count()}`);
  const ownMore = page.locator('#changes-more');
  check((await ownMore.textContent()) === 'Show 100 more of 150 changes left', `${await ownMore.textContent()}`);
  await ownMore.focus();
  await page.keyboard.press('Enter');
  await own.nth(199).waitFor();
  f = await active();
  check(f.tag === 'BUTTON' && f.text === (await own.nth(100).locator('button.change-open').textContent()),
    `the focus is on the sync's first row brought: ${JSON.stringify(f)}`);
  await page.keyboard.press('Enter');
  await own.nth(100).locator('section.diff').waitFor();
  await ownMore.focus();
  await page.keyboard.press('Enter');
  await own.nth(249).waitFor();
  check(await own.count() === 250 && await ownMore.count() === 0, 'all 250, no more to show');
  const names = await own.locator('button.change-open').allTextContents();
  check(new Set(names).size === 250, 'each change once');
  await shot(page, 'compare-25-sync-page');

  // A sync's page: "Compare with another sync…" compares it with its base.
  await page.goto(`${BASE}/projects/${p}/syncs/${s2}`);
  await page.getByRole('link', { name: 'Compare with another sync…' }).click();
  await page.waitForURL(url(s1, s2));
  await page.locator('.compare-summary').waitFor();

  // The picker: any two, Swap, Compare, all from the keyboard.
  await page.goto(`${BASE}/projects/${p}/compare`);
  await page.locator('#compare-base').selectOption(String(s3));
  await page.locator('#compare-target').selectOption(String(s1));
  const failedOption = page.locator(`#compare-base option[value="${started.body.id}"]`);
  check(await failedOption.isDisabled(), 'a failed sync cannot be chosen');
  await page.locator('#compare-swap').focus();
  await page.keyboard.press('Enter');
  await page.locator('#compare-go').focus();
  await page.keyboard.press('Enter');
  await page.waitForURL(url(s1, s3));
  await page.locator('.compare-summary').waitFor();
  f = await active();
  check(f.id === 'compare-title', `the focus is on the comparison's title: ${JSON.stringify(f)}`);
  check(await page.locator('#compare-base').inputValue() === String(s1), 'the picker shows the pair');
  await shot(page, 'compare-40-picker');
});
