// The viewers: a file with line numbers and syntax highlighting (the text itself unchanged), Raw
// and Download of the bytes, an image shown as an image, a markdown file rendered (its source a
// press away); memory notes rendered from markdown with hostile markup neutralised (the test
// fails if any injected alert fires, and the DOM is checked for what the sanitizer must
// remove); a note written by hand edited, deleted and brought back from the page; every new
// view at 390 px.
import { readFileSync } from 'node:fs';
import { run, cfg, BASE, check, shot, api } from './lib.mjs';

const P = cfg.project;

async function fits(page, what) {
  const w = await page.evaluate(() => document.documentElement.scrollWidth);
  check(w <= 390, `${what} fits 390 px (scrollWidth ${w})`);
}

run('viewers', async (b) => {
  const page = await b.page('viewers');
  const dialogs = [];
  page.on('dialog', (d) => { dialogs.push(d.message()); d.dismiss().catch(() => {}); });
  const fileUrl = (p) => `${BASE}/projects/${P}/syncs/${cfg.sync_id}?file=${encodeURIComponent(p)}`;

  // ---- a C file: numbers, highlighting, the text as it is ----
  await page.goto(fileUrl('src/app.c'));
  await page.locator('.code-view[data-language="c"]').waitFor();
  check(await page.locator('.file-text .hljs-keyword').count() > 0, 'keywords highlighted');
  const shown = await page.locator('.file-text').textContent();
  check(shown === cfg.app_c, `the text is unchanged by highlighting: ${JSON.stringify(shown)}`);
  const numbers = (await page.locator('.line-numbers').textContent()).split('\n');
  check(numbers.length === cfg.app_c.split('\n').length - 1 && numbers[0] === '1' &&
    numbers[numbers.length - 1] === String(numbers.length), `one number per line: ${numbers}`);
  check(await page.locator('.file-text script, .file-text b, .file-text img').count() === 0, 'no element from the file');
  await shot(page, '90-file-highlighted');

  // Raw: the bytes in a tab of their own; Download: the file under its name.
  const [popup] = await Promise.all([page.waitForEvent('popup'), page.locator('#file-raw').click()]);
  await popup.waitForLoadState();
  const raw = await popup.evaluate(() => document.body.innerText);
  check(raw.trim() === cfg.app_c.trim(), `raw view shows the text: ${JSON.stringify(raw)}`);
  await popup.close();
  const [dl] = await Promise.all([page.waitForEvent('download'), page.locator('#file-download').click()]);
  check(dl.suggestedFilename() === 'app.c', `download named ${dl.suggestedFilename()}`);
  check(readFileSync(await dl.path(), 'utf8') === cfg.app_c, 'downloaded bytes are the file');

  // A file in no known language stays plain, with numbers.
  await page.goto(fileUrl('notes.unknownext'));
  await page.locator('.code-view').waitFor();
  check(await page.locator('.line-numbers').textContent() === '1\n2', 'numbers for a plain file');

  // ---- an image ----
  await page.goto(fileUrl('img/dot.png'));
  const img = page.locator('.file-image img');
  await img.waitFor();
  await page.waitForFunction(() => document.querySelector('.file-image img').complete);
  check(await img.evaluate((el) => el.naturalWidth) === 2, 'the PNG is decoded and shown');
  check(await page.locator('#file-download').getAttribute('download') === 'dot.png', 'download of the image');
  await shot(page, '91-file-image');

  // ---- a markdown file: rendered (no front matter, no script), its source one press away ----
  await page.goto(fileUrl('docs/readme.md'));
  const rendered = page.locator('.file-markdown.markdown');
  await rendered.waitFor();
  check(await rendered.locator('h1', { hasText: 'Read me' }).count() === 1 && await rendered.locator('strong').count() === 1,
    'the markdown file is rendered');
  const renderedText = await rendered.textContent();
  check(!renderedText.includes('title:') && !renderedText.includes('**'), `front matter and markup not shown: ${renderedText}`);
  check(await rendered.locator('script').count() === 0, 'no script from the file');
  check(await page.getByRole('button', { name: 'Rendered' }).getAttribute('aria-pressed') === 'true', 'Rendered pressed');
  const progHref = await rendered.locator('a', { hasText: 'the program' }).getAttribute('href');
  check(progHref === `/projects/${P}/syncs/${cfg.sync_id}?dir=src%2F&file=src%2Fapp.c`, `a relative link opens the file here: ${progHref}`);
  check(!(await page.locator('.markdown-file .code-view').isVisible()), 'the source is hidden');
  await shot(page, '91b-file-markdown');
  await page.getByRole('button', { name: 'Source' }).click();
  await page.locator('.markdown-file .code-view').waitFor();
  check((await page.locator('.markdown-file .file-text').textContent()).includes('Some **bold** text'), 'the source as it is');
  check(!(await rendered.isVisible()), 'the rendering is hidden');
  check(await page.getByRole('button', { name: 'Source' }).getAttribute('aria-pressed') === 'true', 'Source pressed');
  // A search result's line opens the source, where the line is.
  await page.goto(fileUrl('docs/readme.md') + '&line=4');
  await page.locator('.markdown-file .code-view .line-target[data-line="4"]').waitFor();
  check(!(await page.locator('.file-markdown').isVisible()), 'the rendering is hidden for a line');

  // ---- memory: hostile markdown ----
  await page.goto(`${BASE}/projects/${P}/memory`);
  const hostile = page.locator('.memory-entry', { has: page.locator('h3', { hasText: 'Hostile' }) });
  await hostile.waitFor();
  await hostile.locator('summary', { hasText: 'Full text' }).click();
  const md = hostile.locator('.entry-content.markdown');
  await md.waitFor();
  check(await md.locator('strong').count() === 1, 'markdown rendered (bold)');
  check(await md.locator('h1').count() === 1, 'markdown rendered (heading)');
  const good = md.locator('a[href="https://example.com/docs"]');
  check(await good.count() === 1 && (await good.getAttribute('rel')).includes('noopener'), 'a plain link kept, noopener');
  const bad = await page.evaluate(() => {
    const root = document.querySelector('.memory-results');
    const found = [...root.querySelectorAll('script, iframe, svg, style, object, embed, img')].map((e) => e.tagName);
    for (const el of root.querySelectorAll('*')) {
      for (const a of el.attributes) {
        if (/^on/i.test(a.name)) found.push(`${el.tagName}[${a.name}]`);
        if (/^\s*javascript:/i.test(a.value)) found.push(`${el.tagName}[${a.name}=${a.value}]`);
      }
    }
    return found;
  });
  check(bad.length === 0, `nothing executable left: ${bad}`);
  const text = await md.textContent();
  check(text.includes("<script>alert('script')</script>") && text.includes('<img src=x onerror='), `raw HTML shown as text: ${text}`);
  await page.waitForTimeout(300);
  check(dialogs.length === 0, `no injected alert fired: ${dialogs}`);
  check(await page.evaluate(() => window.__pwned === undefined), 'no injected script ran');
  await shot(page, '92-memory-markdown');

  // ---- memory: edit, delete, undo ----
  const imported = page.locator('.memory-entry', { has: page.locator('code', { hasText: '.memory/guide.md' }) });
  check(await imported.getByRole('button', { name: /^Edit note/ }).count() === 0, 'an imported entry cannot be edited here');
  const runbook = () => page.locator('.memory-entry[data-status=active]', { has: page.locator('h3', { hasText: 'Runbook' }) });
  await runbook().getByRole('button', { name: /^Edit note/ }).click();
  const form = page.getByRole('form', { name: /Edit note Runbook/ });
  await form.waitFor();
  check(await form.getByLabel('Title').inputValue() === 'Runbook', 'the form holds the note');
  check(await page.evaluate(() => document.activeElement.id.endsWith('-title')), 'focus in the title');
  await form.getByLabel('Text (markdown)').fill('Restart the **cache** weekly.');
  await form.getByLabel('Tags').fill('ops, cache');
  const phone = await b.page('viewers-phone', { width: 390, height: 844 });
  await form.getByRole('button', { name: 'Save' }).click();
  await page.locator('.notice', { hasText: 'is the new version' }).waitFor();
  const edited = runbook();
  check((await edited.locator('.excerpt').textContent()).includes('weekly'), 'the new text is shown');
  check(await edited.locator('.tags li').allTextContents().then((t) => t.join(',')) === 'ops,cache', 'new tags');
  await edited.getByRole('button', { name: 'Versions' }).click();
  await edited.locator('.version').nth(1).waitFor();
  check(await edited.locator('.version').count() === 2, 'the old version kept');
  await shot(page, '93-memory-edited');

  await edited.getByRole('button', { name: /^Delete note/ }).click();
  await page.getByText('Delete this note?').waitFor();
  await page.locator('.confirm-delete').getByRole('button', { name: 'Delete', exact: true }).click();
  await page.locator('.notice', { hasText: 'Deleted note' }).waitFor();
  check(await runbook().count() === 0, 'the deleted note left the list');
  await page.getByRole('button', { name: 'Undo' }).click();
  await page.locator('.notice', { hasText: 'Restored' }).waitFor();
  check(await runbook().count() === 1, 'undo brought it back');
  const all = await api('GET', `/projects/${P}/memory?q=weekly`);
  check(all.body.length === 1 && all.body[0].origin === 'manual', 'the API agrees');

  // ---- 390 px ----
  await phone.goto(fileUrl(cfg.long_file));
  await phone.locator('.code-view').waitFor();
  await fits(phone, 'file view with a long line');
  check(await phone.locator('.code-view').evaluate((el) => el.scrollWidth > el.clientWidth), 'the long line scrolls in its box');
  await shot(phone, '94-phone-file');
  await phone.goto(fileUrl('img/dot.png'));
  await phone.locator('.file-image img').waitFor();
  await fits(phone, 'image view');
  await phone.goto(fileUrl('docs/readme.md'));
  await phone.locator('.file-markdown.markdown').waitFor();
  await fits(phone, 'rendered markdown file');
  await phone.goto(`${BASE}/projects/${P}/memory`);
  const h = phone.locator('.memory-entry', { has: phone.locator('h3', { hasText: 'Hostile' }) });
  await h.locator('summary', { hasText: 'Full text' }).click();
  await h.locator('.entry-content.markdown').waitFor();
  await fits(phone, 'memory with rendered markdown');
  await phone.locator('.memory-entry', { has: phone.locator('h3', { hasText: 'Runbook' }) })
    .getByRole('button', { name: /^Edit note/ }).click();
  await phone.getByRole('form', { name: /Edit note/ }).waitFor();
  await fits(phone, 'memory edit form');
  await shot(phone, '95-phone-memory-edit');
  check(dialogs.length === 0, `no injected alert fired: ${dialogs}`);
});
