// A server without --local-root takes no path on its disk: the Add form's hint does not offer
// one, and a path given anyway is refused under the Source field with the server's reason.
import { run, cfg, BASE, check, shot } from './lib.mjs';

run('local_paths', async (b) => {
  const page = await b.page('local-paths');
  await page.goto(BASE + '/');
  await page.getByRole('heading', { name: 'Projects' }).waitFor();
  const hint = await page.locator('#source-help').textContent();
  check(hint.includes('no paths on its own disk') && !hint.includes('absolute path'), `hint: ${hint}`);
  check(!(await page.getByLabel('Source').getAttribute('placeholder')).startsWith('/'), 'no path as the example');
  await shot(page, 'local-paths-10-hint');
  await page.getByLabel('Name').fill('local');
  await page.getByLabel('Source').fill(cfg.repo);
  await b.expecting([/status of 403/], async () => {
    await page.getByRole('button', { name: 'Add project' }).click();
    await page.locator('#source-error [role=alert]').filter({ hasText: 'local paths are not allowed' }).waitFor();
  });
  check(await page.getByLabel('Source').getAttribute('aria-invalid') === 'true', 'source marked invalid');
});
