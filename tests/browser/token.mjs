// A server with PROJSYNC_API_TOKEN: the page asks for the token (saying which, with the focus
// in its field); a wrong one is said to be refused (the server's message is the same as for
// none), the right one opens the projects.
import { run, cfg, BASE, check, shot } from './lib.mjs';

run('token', async (b) => {
  const page = await b.page('token');
  await b.expecting([/401/], async () => {
    await page.goto(BASE + '/');
    await page.locator('#token').waitFor();
    check(!(await page.locator('.token-refused').count()), 'no token yet: nothing was refused');
    // A first-time user is told what is asked for and where it comes from, in words, and can
    // type it at once.
    await page.getByRole('heading', { name: 'This server needs a token', level: 1 }).waitFor();
    const text = await page.locator('main').textContent();
    check(text.includes('PROJSYNC_API_TOKEN') && !text.includes('Something went wrong') && !text.includes('Authorization'),
      `the page explains the token: ${text}`);
    check(await page.evaluate(() => document.activeElement.id) === 'token', 'focus in the token field');
    await shot(page, 'token-05-asked');
    await page.fill('#token', 'not-the-token');
    await page.press('#token', 'Enter');
    await page.locator('.token-refused').waitFor();
    await shot(page, 'token-10-refused');
  });
  await page.fill('#token', cfg.token);
  await page.press('#token', 'Enter');
  await page.getByRole('heading', { name: 'Projects' }).waitFor();
  check(!(await page.locator('.token-refused').count()), 'the refusal is gone');
});
