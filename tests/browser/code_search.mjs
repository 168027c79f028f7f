// Code search on the file browser: what the page lists equals `git grep -n` at the sync's
// commit (the expected lists come from git in the pytest wrapper), grouped by file with the
// match marked; a line that looks like markup stays text; "More" follows the Link header; the
// regex and case toggles and the path glob; a bad regex is a clear error; a pattern the index
// cannot narrow carries the server's note; a result opens the file at its line (the band sits
// on that line of the text); an old sync searches its own files; 390 px.
import { run, cfg, BASE, check, shot } from './lib.mjs';

const P = cfg.project;
const syncUrl = (id, q = '') => `${BASE}/projects/${P}/syncs/${id}${q}`;

// [[path, line]] of the results on the page, in order.
async function shown(page) {
  return page.evaluate(() => [...document.querySelectorAll('.search-file')].flatMap((f) => {
    const path = f.querySelector('.search-path a').textContent;
    return [...f.querySelectorAll('.search-lineno')].map((a) => [path, Number(a.textContent)]);
  }));
}

async function search(page, q, { regex = false, icase = false, glob = '' } = {}) {
  await page.fill('#code-q', q);
  await page.setChecked('#code-regex', regex);
  await page.setChecked('#code-icase', icase);
  await page.fill('#code-glob', glob);
  // The page is drawn again for the new URL: wait for results that are not the old ones.
  await page.evaluate(() => document.querySelector('.search-results').setAttribute('data-stale', ''));
  await page.click('#code-go');
  await page.locator('.search-results:not([data-stale]) :is(.search-summary, .notice-error)').first().waitFor();
}

async function loadAll(page) {
  while (await page.locator('#code-more').count()) {
    const before = (await shown(page)).length;
    await page.click('#code-more');
    await page.locator('.search-lineno').nth(before).waitFor();
  }
}

const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);

run('code_search', async (b) => {
  const page = await b.page('code-search');
  const dialogs = [];
  page.on('dialog', (d) => { dialogs.push(d.message()); d.dismiss().catch(() => {}); });
  await page.goto(syncUrl(cfg.sync_id));
  await page.locator('#code-q').waitFor();

  // ---- a literal with more than one page of matches ----
  await search(page, 'needle');
  check(await page.locator('#code-more').count() === 1, 'more than 100 matches: a "More" button');
  const first = await shown(page);
  check(first.length === 100, `the first page holds 100 lines (${first.length})`);
  await loadAll(page);
  const all = await shown(page);
  check(same(all, cfg.needle), `results equal git grep -n:\n${JSON.stringify(all)}\n${JSON.stringify(cfg.needle)}`);
  const files = await page.locator('.search-file').count();
  check(files === new Set(cfg.needle.map((x) => x[0])).size, `grouped by file (${files})`);
  const marks = await page.locator('.search-text mark').allTextContents();
  check(marks.length === cfg.needle.length && marks.every((m) => m === 'needle'), `each match marked: ${marks.slice(0, 5)}`);
  // The markup-looking line is text: no element from the file, and nothing ran.
  check(await page.locator('.search-results img, .search-results script').count() === 0, 'no element from the content');
  const hostile = page.locator('.search-text', { hasText: 'onerror' });
  check((await hostile.textContent()) === '<img src=x onerror=alert(1)> needle here', 'the line shown as it is');
  check(!(await page.locator('.notice-warn').count()), 'no note: the index narrowed the search');
  await shot(page, 'a0-code-search');

  // ---- a result opens the file at its line; the results stay ----
  const [path, line] = cfg.needle.find((x) => x[0] === 'big.txt' && x[1] > 150);
  await page.click(`.search-file:has(.search-path a:text-is("${path}")) .search-lineno:text-is("${line}")`);
  const band = page.locator('.code-view .line-target');
  await band.waitFor();
  check(await band.getAttribute('data-line') === String(line), 'the band is on the line clicked');
  check(new URL(page.url()).searchParams.get('q') === 'needle', 'the search stays in the URL');
  check(await page.locator('.search-file').count() === files, 'the results stay on the page, all pages of them');
  check(await band.isVisible() && await band.evaluate((el) => {
    const r = el.getBoundingClientRect();
    return r.top >= 0 && r.bottom <= innerHeight;
  }), 'the line is scrolled into view');
  // The band covers the text of that line (and not the one before or after).
  const geo = await page.evaluate((n) => {
    const code = document.querySelector('.file-text code');
    const text = code.textContent;
    let start = 0;
    for (let i = 1; i < n; i++) start = text.indexOf('\n', start) + 1;
    const walker = document.createTreeWalker(code, NodeFilter.SHOW_TEXT);
    let pos = 0, node;
    while ((node = walker.nextNode())) {
      if (pos + node.length > start) break;
      pos += node.length;
    }
    const range = document.createRange();
    range.setStart(node, start - pos);
    range.setEnd(node, start - pos + 1);
    const t = range.getBoundingClientRect(), b = document.querySelector('.line-target').getBoundingClientRect();
    return { text: text.slice(start, text.indexOf('\n', start)), mid: (t.top + t.bottom) / 2, top: b.top, bottom: b.bottom };
  }, line);
  check(geo.text === cfg.big_txt.split('\n')[line - 1], `line ${line} is ${JSON.stringify(geo.text)}`);
  check(geo.mid > geo.top && geo.mid < geo.bottom, `the band covers line ${line}: ${JSON.stringify(geo)}`);
  await shot(page, 'a1-code-search-line');

  // ---- case, regex, glob ----
  await search(page, 'NEEDLE');
  check(same(await shown(page), [['src/app.c', 3]]), 'case-sensitive by default');
  await search(page, 'NEEDLE', { icase: true });
  await loadAll(page);
  check(same(await shown(page), cfg.needle_icase), 'ignore case equals git grep -i');
  await search(page, 'needle_?\\d', { regex: true });
  check(same(await shown(page), cfg.regex), `regex equals git grep -P: ${JSON.stringify(await shown(page))}`);
  check(same(await page.locator('.search-text mark').allTextContents(), ['needle3']), 'the regex match marked');
  await search(page, 'needle', { glob: 'src/**' });
  check(same(await shown(page), cfg.glob_src), 'the path glob keeps src/');
  check(await page.locator('#code-regex').isChecked() === false && await page.inputValue('#code-glob') === 'src/**',
    'the form shows the search in force');

  // ---- a bad regex: the server's error, clearly; a short pattern: the note ----
  await b.expecting([/400/], async () => {
    await search(page, 'needle(', { regex: true });
  });
  const err = page.locator('.search-results .notice-error');
  check(await err.count() === 1, 'an error notice');
  const msg = await err.textContent();
  check(/not valid/.test(msg) && /parenthes/i.test(msg), `the error names the problem: ${msg}`);
  await search(page, 'ne');
  const note = await page.locator('.search-results .notice-warn').textContent();
  check(/every file was read/.test(note), `the note when the index cannot narrow: ${note}`);

  // ---- an older sync searches its own snapshot ----
  await page.goto(syncUrl(cfg.old_sync_id, '?q=needle'));
  await page.locator('.search-summary').waitFor();
  await loadAll(page);
  check(same(await shown(page), cfg.needle_old), 'the old sync: git grep at its commit');
  check(!(await shown(page)).some((x) => x[0] === 'src/added.c'), 'no file of a later sync');

  // ---- a phone ----
  const phone = await b.page('code-search-phone', { width: 390, height: 844 });
  await phone.goto(syncUrl(cfg.sync_id, '?q=needle&glob=' + encodeURIComponent('**/*.md')));
  await phone.locator('.search-file').first().waitFor();
  const w = await phone.evaluate(() => document.documentElement.scrollWidth);
  check(w <= 390, `search results fit 390 px (scrollWidth ${w})`);
  await shot(phone, 'a2-code-search-phone');
  await phone.click('.search-lineno >> nth=1');
  await phone.locator('.code-view .line-target').waitFor();
  const w2 = await phone.evaluate(() => document.documentElement.scrollWidth);
  check(w2 <= 390, `the file at its line fits 390 px (scrollWidth ${w2})`);

  check(dialogs.length === 0, `no dialog opened: ${dialogs}`);
});
