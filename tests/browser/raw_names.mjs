// Two file names that differ only in bytes that are not UTF-8 (lat\xe9.txt, lat\xe8.txt: both
// shown as lat\ufffd.txt) have addresses of their own: ?file= holds the exact bytes
// (?file=lat%E9.txt), so each opens, from the list, from a change, from a code search result
// and from a shared address.
// Ordinary names keep the addresses they had.
import { run, cfg, BASE, check, shot } from './lib.mjs';

run('raw_names', async (b) => {
  const page = await b.page('raw-names');
  const p = encodeURIComponent(cfg.project);
  const base = `${BASE}/projects/${p}/syncs/${cfg.sync}`;
  await page.goto(base);
  const links = page.locator('ul.file-list li.file a', { hasText: 'lat\ufffd.txt' });
  await links.first().waitFor();
  check(await links.count() === 2, 'both files are listed');
  const hrefs = [await links.nth(0).getAttribute('href'), await links.nth(1).getAttribute('href')];
  check(hrefs[0] !== hrefs[1], `the two files have addresses of their own: ${hrefs}`);
  check(hrefs.some((x) => x.endsWith('?file=lat%E9.txt')) && hrefs.some((x) => x.endsWith('?file=lat%E8.txt')),
    `?file= holds the exact bytes: ${hrefs}`);

  // Opened from the list, with the keyboard: the file itself, its link selected and focused.
  const e8 = page.locator('ul.file-list li.file a[href$="?file=lat%E8.txt"]');
  await e8.focus();
  await page.keyboard.press('Enter');
  await page.waitForURL(/\?file=lat%E8\.txt$/);
  const text = page.locator('.file-view pre.file-text');
  await page.locator('.file-view pre.file-text', { hasText: 'grave' }).waitFor();
  check((await text.textContent()).includes('e-grave content'), 'the \\xe8 file is shown');
  check(await page.locator('li.file.selected').count() === 1 &&
    (await page.locator('li.file.selected a').getAttribute('href')).endsWith('lat%E8.txt'), 'only its link is selected');
  check(await page.evaluate(() => document.activeElement.getAttribute('href')?.endsWith('lat%E8.txt')), 'the focus stays on its link');
  await shot(page, 'raw-names-10-e8');

  // Each address, opened as it is (a shared link, a reload).
  for (const [q, want] of [['lat%E9.txt', 'e-acute content'], ['lat%e8.txt', 'e-grave content']]) {
    await page.goto(`${base}?file=${q}`);
    await text.waitFor();
    check((await text.textContent()).includes(want), `?file=${q} shows ${want}`);
  }
  // Another link made on that page keeps the file's exact bytes (the code search form stays
  // on it; a folder link drops it).
  const docs = page.locator('ul.file-list li.dir a', { hasText: 'docs/' });
  check((await docs.getAttribute('href')).endsWith('?dir=docs%2F'), `a folder link: ${await docs.getAttribute('href')}`);
  // The address the page made before (the name as shown) names neither: it says so.
  await page.goto(`${base}?file=${encodeURIComponent('lat\ufffd.txt')}`);
  await page.locator('.file-view .notice-error').waitFor();
  check((await page.locator('.file-view .notice-error').textContent()).includes('Several files'), 'an ambiguous address says so');

  // Ordinary names: the addresses they always had (URLSearchParams' form).
  await page.goto(`${base}?dir=docs%2F`);
  const plain = page.locator('ul.file-list li.file a', { hasText: 'a b+c.md' });
  await plain.waitFor();
  const want = `/projects/${p}/syncs/${cfg.sync}?${new URLSearchParams({ dir: 'docs/', file: 'docs/a b+c.md' })}`;
  check(await plain.getAttribute('href') === want, `${await plain.getAttribute('href')} is ${want}`);
  await plain.click();
  await page.getByRole('button', { name: 'Source' }).click();
  await page.locator('.file-view pre.file-text', { hasText: 'plain' }).waitFor();

  // Folders too: d\xe9/ and d\xe8/ (both shown as d\ufffd/) list their own files, from the root
  // and back by the crumbs.
  await page.goto(base);
  const folders = page.locator('ul.file-list li.dir a', { hasText: 'd\ufffd/' });
  await folders.first().waitFor();
  check(await folders.count() === 2, `two folders: ${await folders.count()}`);
  const folderHrefs = [await folders.nth(0).getAttribute('href'), await folders.nth(1).getAttribute('href')];
  check(folderHrefs.some((x) => x.endsWith('?dir=d%E9/')) && folderHrefs.some((x) => x.endsWith('?dir=d%E8/')),
    `?dir= holds the folder's bytes: ${folderHrefs}`);
  await page.locator('ul.file-list li.dir a[href$="?dir=d%E8/"]').click();
  const inner = page.locator('ul.file-list li.file a');
  await page.waitForURL(/\?dir=d%E8\/$/);
  // The address changes before the folder is drawn: wait for the folder's listing itself.
  await page.locator('ul.file-list[aria-label="Files in d\ufffd/"]').waitFor();
  check((await inner.allTextContents()).join() === 'grave-inside.txt', `the \\xe8 folder's file: ${await inner.allTextContents()}`);
  await inner.first().click();
  await page.waitForURL(/\?dir=d%E8\/&file=d%E8\/grave-inside\.txt$/);
  await page.locator('.file-view pre.file-text', { hasText: 'inside e-grave' }).waitFor();
  const crumb = page.locator('nav.file-crumbs a', { hasText: 'd\ufffd' });
  check((await crumb.getAttribute('href')).endsWith('?dir=d%E8/'), `the crumb: ${await crumb.getAttribute('href')}`);
  await page.goto(`${base}?dir=d%E9%2F`);
  await page.locator('ul.file-list li.file a', { hasText: 'acute-inside.txt' }).waitFor();

  // A first sync's change opens its file in the browser: the right one of the two.
  await page.goto(base);
  const changes = page.locator('li.change button.change-open', { hasText: 'lat\ufffd.txt' });
  await changes.first().waitFor();
  check(await changes.count() === 2, 'two changes of that name');
  const opened = [];
  for (let i = 0; i < 2; i++) {
    await page.goto(base);
    await changes.nth(i).click();
    await page.waitForURL(/\?file=lat%E[89]\.txt$/);
    const raw = /file=(lat%E[89]\.txt)$/.exec(page.url())[1];
    opened.push(raw);
    const wantText = raw === 'lat%E9.txt' ? 'e-acute content' : 'e-grave content';
    await page.locator('.file-view pre.file-text', { hasText: wantText }).waitFor();
  }
  check(opened.sort().join() === 'lat%E8.txt,lat%E9.txt', `each change opens its own file: ${opened}`);

  // Code search results open a name that is not UTF-8 by its bytes (the result's path_raw):
  // the two lat\ufffd.txt are two results, each opening its own file at its line.
  await page.goto(`${base}?q=content`);
  const found = page.locator('.search-file .search-path a', { hasText: 'lat\ufffd.txt' });
  await found.first().waitFor();
  check(await found.count() === 2, `two files found: ${await found.count()}`);
  const foundHrefs = [await found.nth(0).getAttribute('href'), await found.nth(1).getAttribute('href')];
  check(foundHrefs.some((x) => /[?&]file=lat%E9\.txt(&|$)/.test(x)) && foundHrefs.some((x) => /[?&]file=lat%E8\.txt(&|$)/.test(x)),
    `results name the exact bytes: ${foundHrefs}`);
  for (const [bytes, want] of [['lat%E9.txt', 'e-acute content'], ['lat%E8.txt', 'e-grave content']]) {
    await page.goto(`${base}?q=content`);
    const line = page.locator(`.search-file:has(.search-path a[href*="file=${bytes}"]) .search-lineno`);
    await line.first().waitFor();
    await line.first().focus();
    await page.keyboard.press('Enter');
    await page.locator('.file-view pre.file-text', { hasText: want }).waitFor();
    check(page.url().includes(`file=${bytes}`) && /[?&]line=1(&|$)/.test(page.url()), `the result opened ${page.url()}`);
  }
  // In a folder that is not UTF-8 either: the folder's bytes go in ?dir= too.
  await page.goto(`${base}?q=inside%20e-grave`);
  const inside = page.locator('.search-file .search-path a', { hasText: 'grave-inside.txt' });
  await inside.waitFor();
  check(/[?&]file=d%E8\/grave-inside\.txt(&|$)/.test(await inside.getAttribute('href')) &&
    /[?&]dir=d%E8\/(&|$)/.test(await inside.getAttribute('href')), `folder and file by bytes: ${await inside.getAttribute('href')}`);
  await inside.click();
  await page.locator('.file-view pre.file-text', { hasText: 'inside e-grave' }).waitFor();
  await page.locator('ul.file-list li.file a', { hasText: 'grave-inside.txt' }).waitFor();
  await shot(page, 'raw-names-20-search');
});
