// Cases a first-time user met on the page: a file whose name is not UTF-8 (its content and its
// diff open through the listing's path_raw), and the page of a sync that is still running
// (shown live, not as a failed sync, and filled in when it ends).
import { run, cfg, BASE, check, shot, api, waitSync, git } from './lib.mjs';
import { writeFileSync } from 'node:fs';

run('odd_cases', async (b) => {
  // Short, so that the file browser is below the fold.
  const page = await b.page('odd', { width: 1280, height: 500 });
  const p = encodeURIComponent(cfg.project);

  // A name that is not UTF-8: the listing shows U+FFFD, the page asks with the exact bytes.
  await page.goto(`${BASE}/projects/${p}/syncs/${cfg.second}`);
  const latin = page.locator('ul.file-list li.file a', { hasText: cfg.latin_shown });
  await latin.click();
  await page.locator('.file-view .code-view').waitFor();
  // Opening a file keeps the page where it is, the focus on that file's link (not thrown to
  // the top of the page, the content out of sight).
  check(await page.evaluate(() => window.scrollY) > 0, 'the page did not jump to the top');
  check(await page.evaluate(() => document.activeElement.dataset.focusKey) === `file:${cfg.latin_raw}`,
    'the focus is on the file\'s link');
  check((await page.locator('.file-view pre.file-text').textContent()).includes('café two'),
    'the file\'s content is shown');
  check(!(await page.locator('.file-view .notice-error').count()), 'no "no such file" error');
  const change = page.locator('button.change-open', { hasText: cfg.latin_shown });
  await change.click();
  const diff = page.locator('li.change', { hasText: cfg.latin_shown }).locator('section.diff');
  await diff.waitFor();
  check((await diff.locator('.diff-head').textContent()).includes('+1'), 'the diff has its added line');
  check(!(await diff.locator('.diff-note').count()), 'not "No difference."');
  // Its one line is the whole file: nothing is offered "to the end".
  await diff.locator('tr.add, tr.chg').first().waitFor();
  check(await diff.locator('tr.gap').count() === 0, 'no row to expand past the end of the file');
  await shot(page, 'odd-10-non-utf8-name');

  // Side by side, a line far wider than the screen wraps in its half: the new side is in view
  // beside the old one, not thousands of pixels to the right.
  await page.locator('button.change-open', { hasText: 'long.txt' }).click();
  const longDiff = page.locator('li.change', { hasText: 'long.txt' }).locator('section.diff');
  await longDiff.getByRole('button', { name: 'Side by side' }).click();
  await longDiff.locator('table.diff-split td.code.new').waitFor();
  const box = await longDiff.boundingBox();
  const right = await longDiff.locator('td.code.new').boundingBox();
  check(right.x + right.width <= box.x + box.width + 1, `the new side is within the diff (${JSON.stringify([box, right])})`);
  await shot(page, 'odd-11-long-line-side-by-side');

  // The page of a sync that is still running.
  const started = await api('POST', `/projects/${p}/sync`, {});
  check(started.status === 202, 'sync started');
  const id = started.body.id;
  await page.goto(`${BASE}/projects/${p}/syncs/${id}`);
  await page.waitForSelector('.banner[data-status=running], .banner[data-status=queued]');
  const text = await page.locator('main').textContent();
  check(!text.includes('did not succeed'), `a running sync is not called failed: ${text}`);
  check(text.includes(`Sync #${id} is`), 'it says the sync is under way');
  await shot(page, 'odd-20-running-sync-page');
  await waitSync(id);
  // Filled in once it ends, without a reload.
  await page.locator('ul.changes li.change').first().waitFor();
  check(!(await page.locator('.sync-pending').count()), 'the placeholders are gone');
  check((await page.locator('#sync-title').textContent()).includes('succeeded'), 'the badge says succeeded');

  // Cancel from the keyboard: when the sync ends the focus is not dropped on <body>.
  writeFileSync(`${cfg.repo}/cancel-me.txt`, 'for the sync cancelled from the keyboard\n');
  git(cfg.repo, 'add', 'cancel-me.txt');
  git(cfg.repo, 'commit', '-qm', 'four');
  await page.goto(`${BASE}/projects/${p}`);
  await page.locator('#sync-now:enabled').waitFor();
  // Sync Now from the keyboard: the button is disabled while the sync runs, and the focus goes
  // to the banner's title (kept there as the banner updates), one Tab before Cancel.
  await page.locator('#sync-now').focus();
  await page.keyboard.press('Enter');
  await page.locator('#cancel-sync').waitFor();
  await page.waitForTimeout(400); // an update or two, each rebuilding the banner
  check(await page.evaluate(() => document.activeElement.id) === 'banner-title',
    `the focus is on the banner title, not ${await page.evaluate(() => document.activeElement.tagName)}`);
  const t0 = Date.now();
  await page.keyboard.press('Tab');
  const tabbed = await page.evaluate(() => document.activeElement.outerHTML.slice(0, 120));
  check(tabbed.includes('id="cancel-sync"'), `Tab reaches Cancel, not ${tabbed} (${await page.locator('.banner').getAttribute('data-status')}, ${Date.now() - t0} ms)`);
  await page.keyboard.press('Enter');
  await page.waitForSelector('.banner[data-status=cancelled]');
  await page.waitForFunction(() => document.activeElement !== document.body);
  const focused = await page.evaluate(() => document.activeElement.textContent);
  check(focused === 'Retry', `the focus moves to Retry, not ${focused}`);

  // A sync of another project, under this one's address: not found, not shown as this one's.
  const cancelled = /#(\d+)/.exec(await page.locator('.banner h2').textContent())[1];
  check((await api('POST', '/projects', { name: 'other', source: cfg.repo })).status === 201, 'other added');
  await b.expecting([/404/], async () => {
    await page.goto(`${BASE}/projects/other/syncs/${cancelled}`);
    await page.getByRole('heading', { name: 'Not found' }).waitFor();
  });
  check((await page.locator('main').textContent()).includes(`not a sync of project other`), 'it says whose it is not');

  // History's "Load older syncs" from the keyboard (a page of one sync, so that this
  // project's few make pages): the focus goes to the first row it brought, not to <body>.
  const onePerPage = /\/api\/v1\/projects\/[^/]+\/syncs\?limit=30$/;
  await page.route(onePerPage, (r) => r.continue({ url: r.request().url().replace(/limit=30$/, 'limit=1') }));
  await page.goto(`${BASE}/projects/${p}/history`);
  const rows = page.locator('ol.history li.sync-row');
  await rows.first().waitFor();
  check(await rows.count() === 1, 'one sync on the first page');
  await page.getByRole('button', { name: 'Load older syncs' }).focus();
  await page.keyboard.press('Enter');
  await rows.nth(1).waitFor();
  const second = await rows.nth(1).getAttribute('data-sync-id');
  const onOlder = await page.evaluate(() => [document.activeElement.tagName,
    document.activeElement.closest('li.sync-row')?.dataset.syncId]);
  check(onOlder[0] === 'A' && onOlder[1] === second, `the focus is on the first older sync's link, not ${onOlder}`);
  await page.keyboard.press('Tab');
  check(await page.evaluate(() => document.activeElement.closest('li.sync-row') !== null
    || document.activeElement.id === 'load-older'), 'Tab goes on down the list');
  await page.unroute(onePerPage);

  // The server gone (its API refused at the network level): the open overview says so, and
  // stops saying it when the server answers again.
  await page.goto(`${BASE}/projects/${p}`);
  await page.locator('#sync-now:enabled').waitFor();
  await b.expecting([/ERR_FAILED|Failed to load resource/], async () => {
    await page.route('**/api/v1/**', (r) => r.abort('connectionrefused'));
    await page.locator('.offline .notice-error').waitFor();
    await shot(page, 'odd-30-server-unreachable');
    await page.unroute('**/api/v1/**');
    await page.locator('.offline').waitFor({ state: 'hidden' });
  });

  // A note with images: none is loaded (the CSP would refuse a remote one with a console
  // error, which fails this flow; a relative one names a repository file, not a page's).
  const note = await api('POST', `/projects/${p}/memory`, { title: 'Pictures',
    content: 'See ![the diagram](https://example.com/d.png) and ![local](docs/a.png).' });
  check(note.status === 201, 'note added');
  const asked = [];
  page.on('request', (r) => { if (/d\.png|a\.png/.test(r.url())) asked.push(r.url()); });
  await page.goto(`${BASE}/projects/${p}/memory`);
  const entry = page.locator('.memory-entry', { has: page.locator('h3', { hasText: 'Pictures' }) });
  await entry.locator('summary', { hasText: 'Full text' }).click();
  const md = entry.locator('.entry-content.markdown');
  await md.waitFor();
  check(await md.locator('img').count() === 0, 'no <img> in the rendered note');
  const remote = md.locator('a.md-image[href="https://example.com/d.png"]');
  check((await remote.textContent()).includes('the diagram'), 'a remote image is a link with its alt text');
  check((await md.locator('span.md-image').textContent()).includes('local'), 'a relative one is its alt text');
  check(asked.length === 0, `no image was requested: ${asked}`);
  // Relative links in notes open that file in the latest snapshot: from the note's own file
  // for one imported from the repository, from the root for one written by hand. Other
  // schemes stay neutralised, http(s) stays as it is.
  const last = (await api('GET', `/projects/${p}/sync`)).body.last_succeeded.id;
  const linked = await api('POST', `/projects/${p}/memory`, { title: 'Links',
    content: 'See [guide](docs/guide.md), [a folder](docs/), [outside](../x.md), ' +
      '[bad](javascript:alert(1)) and [site](https://example.com/x).' });
  check(linked.status === 201, 'note with links added');
  await page.goto(`${BASE}/projects/${p}/memory`);
  const open = async (title) => {
    const card = page.locator('.memory-entry', { has: page.locator('h3', { hasText: title }) });
    await card.locator('summary', { hasText: 'Full text' }).click();
    const body = card.locator('.entry-content.markdown');
    await body.waitFor();
    return body;
  };
  const manual = await open('Links');
  const hrefOf = (body, text) => body.locator('a', { hasText: text }).getAttribute('href');
  const guideUrl = `/projects/${p}/syncs/${last}?dir=docs%2F&file=docs%2Fguide.md`;
  check(await hrefOf(manual, 'guide') === guideUrl, `a manual note's link from the root: ${await hrefOf(manual, 'guide')}`);
  check(await hrefOf(manual, 'a folder') === `/projects/${p}/syncs/${last}?dir=docs%2F`, 'a folder opens the folder');
  check(await manual.locator('a', { hasText: 'outside' }).count() === 0, 'a link outside the repository is no link');
  check(await manual.locator('span.repo-link-text[title="../x.md"]').textContent() === 'outside', 'it is its text, the address in a title');
  check(await manual.locator('a', { hasText: 'bad' }).getAttribute('href') === null, 'javascript: is not a link');
  check(await hrefOf(manual, 'site') === 'https://example.com/x', 'http(s) stays');
  const imported = await open('How to');
  check(await hrefOf(imported, 'the guide') === `${guideUrl}&line=2`, `from the note's own file: ${await hrefOf(imported, 'the guide')}`);
  check(await hrefOf(imported, 'a sibling') === `/projects/${p}/syncs/${last}?dir=.memory%2Fnotes%2F&file=.memory%2Fnotes%2Fother.md`,
    `a sibling: ${await hrefOf(imported, 'a sibling')}`);
  // Followed, it is that file's page, not "Page not found".
  await page.goto(BASE + await hrefOf(imported, 'the guide'));
  await page.locator('.file-view pre.file-text').waitFor();
  check((await page.locator('.file-view pre.file-text').textContent()).includes('the guide\'s text'), 'the guide is shown');
  await shot(page, 'odd-40-note-relative-link');
  // An address with a bad percent-escape (a link cut short) is the page, saying Not found,
  // not the server's JSON 400; a bad escape in ?file= is a file not in the snapshot.
  const cut = await page.goto(`${BASE}/projects/%E0%A4%A`);
  check(cut.status() === 200, `the page is served: ${cut.status()}`);
  await page.getByRole('heading', { name: 'Page not found' }).waitFor();
  await page.goto(`${BASE}/projects/${p}/syncs/${last}?file=%ZZ`);
  await page.locator('.file-view .notice-error').waitFor();
});
