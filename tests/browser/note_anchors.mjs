// A memory note's `#fragment` link moves to the heading of that note whose id (its GitHub-style
// slug) matches, in the same tab, the focus with it; it does not open the memory page again in
// a new tab.
import { run, cfg, BASE, check, shot, api } from './lib.mjs';

const filler = (n) => 'filler text\n\n'.repeat(n);

run('note_anchors', async (b) => {
  const p = encodeURIComponent(cfg.project);
  const note = await api('POST', `/projects/${p}/memory`, { title: 'Runbook',
    content: '[Go to the setup](#set-up-the-server), [the second notes](#notes-1), ' +
      '[Upper case](#Set-Up-The-Server) and [nowhere](#no-such-heading).\n\n' + filler(60) +
      '## Notes\n\nthe first notes\n\n' + filler(60) +
      '## Set up the server!\n\nthe steps\n\n' + filler(60) +
      '## Notes\n\nthe second notes\n\n' + filler(60) });
  check(note.status === 201, `note added: ${JSON.stringify(note.body)}`);
  // Another note with the same headings: each note's ids are its own.
  check((await api('POST', `/projects/${p}/memory`, { title: 'Other',
    content: '## Set up the server!\n\nnot this one\n' })).status === 201, 'second note added');

  const page = await b.page('note-anchors', { width: 1280, height: 600 });
  const url = `${BASE}/projects/${p}/memory`;
  await page.goto(url);
  for (const title of ['Other', 'Runbook']) {
    const card = page.locator('.memory-entry', { has: page.locator('h3', { hasText: title }) });
    await card.locator('summary', { hasText: 'Full text' }).click();
    await card.locator('.entry-content.markdown').waitFor();
  }
  const md = page.locator('.memory-entry', { has: page.locator('h3', { hasText: 'Runbook' }) })
    .locator('.entry-content.markdown');
  check(await md.locator('h2').nth(1).getAttribute('id') === `note-${note.body.id}-set-up-the-server`,
    `the heading's id: ${await md.locator('h2').nth(1).getAttribute('id')}`);
  check(await md.locator('h2').nth(2).getAttribute('id') === `note-${note.body.id}-notes-1`, 'a repeated heading gets -1');

  const focused = () => page.evaluate(() => {
    const el = document.activeElement, r = el.getBoundingClientRect();
    return { tag: el.tagName, text: el.textContent, next: el.nextElementSibling?.textContent,
      inView: r.top >= 0 && r.bottom <= window.innerHeight };
  });
  // From the keyboard.
  const link = md.locator('a', { hasText: 'Go to the setup' });
  check(await link.getAttribute('target') === null, 'the link has no target=_blank');
  await link.focus();
  await page.keyboard.press('Enter');
  await page.waitForFunction(() => document.activeElement.tagName === 'H2');
  let f = await focused();
  check(f.text === 'Set up the server!' && f.next === 'the steps' && f.inView,
    `the focus is on this note's heading, in view: ${JSON.stringify(f)}`);
  check(page.context().pages().length === 1, 'no other tab was opened');
  check(page.url() === url, `the tab stays on the memory page: ${page.url()}`);
  await shot(page, 'note-anchors-10-moved');

  // With the mouse: the second heading of a name.
  await page.evaluate(() => window.scrollTo(0, 0));
  await md.locator('a', { hasText: 'the second notes' }).click();
  await page.waitForFunction(() => document.activeElement.nextElementSibling?.textContent === 'the second notes');
  f = await focused();
  check(f.inView, `the second Notes heading is in view: ${JSON.stringify(f)}`);
  // A fragment in other letter case finds it too; one naming no heading does nothing.
  await md.locator('a', { hasText: 'Upper case' }).click();
  await page.waitForFunction(() => document.activeElement.nextElementSibling?.textContent === 'the steps');
  await md.locator('a', { hasText: 'nowhere' }).click();
  await page.waitForTimeout(200);
  check(page.context().pages().length === 1, 'still no other tab');
  check(page.url() === url, 'still the memory page');
  check((await md.count()) === 1, 'the note is still open');
});
