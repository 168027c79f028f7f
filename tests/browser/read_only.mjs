// A read-only token (docs/api.md, "Access"): the page asks /api/v1/whoami and offers no control
// that writes (adding a project, Sync Now, Retry, Restore) and says it is read-only; the API
// token in another tab gets them all.
import { run, cfg, BASE, check, shot } from './lib.mjs';

async function signIn(b, page, token) {
  await b.expecting([/401/], async () => {
    await page.goto(BASE + '/');
    await page.locator('#token').fill(token);
    await page.getByRole('button', { name: 'Use token' }).click();
    await page.getByRole('link', { name: 'demo' }).first().waitFor();
  });
}

run('read_only', async (b) => {
  const ro = await b.page('read-only');
  await signIn(b, ro, cfg.read_token);
  check(await ro.locator('#access-note').isVisible(), 'the page says it is read-only');
  check(!(await ro.locator('#add-project').isVisible()), 'no form to add a project');
  await ro.goto(BASE + '/projects/demo');
  await ro.waitForSelector('.banner[data-status=succeeded]');
  check(!(await ro.locator('#sync-now').isVisible()), 'no Sync Now');
  check(await ro.locator('#access-note').isVisible(), 'still read-only after a reload');
  await shot(ro, '90-read-only-overview');

  const rw = await b.page('api-token');
  await signIn(b, rw, cfg.api_token);
  check(!(await rw.locator('#access-note').isVisible()), 'the API token is not read-only');
  check(await rw.locator('#add-project').isVisible(), 'the form to add a project');
  await rw.goto(BASE + '/projects/demo');
  await rw.locator('#sync-now:enabled').waitFor();
});
