// The settings page edits the schedule, the pause threshold and the retention of a project
// (what `project set --every/--max-failures/--keep-syncs/--keep-days` changes): a bad schedule
// or a taken name is refused with the server's message under its field, which gets the focus,
// nothing saved; good values are saved, shown again after a reload, and the overview shows
// the schedule; an emptied box clears its limit. (The project never synced: its compare view
// says only that.)
import { run, cfg, BASE, check, shot, api } from './lib.mjs';

run('settings', async (b) => {
  const page = await b.page('settings');
  const url = `${BASE}/projects/${cfg.project}/settings`;
  await page.goto(url);
  const every = page.getByLabel('Sync schedule');
  await every.waitFor();
  check(await every.inputValue() === 'off', 'schedule off at first');
  check(await page.getByLabel('Keep syncs').inputValue() === '', 'no retention at first');

  await every.fill('often');
  await b.expecting([/status of 400/], async () => {
    await page.getByRole('button', { name: 'Save settings' }).click();
    await page.locator('#set-every-error [role=alert]').filter({ hasText: 'every' }).waitFor();
  });
  check(await page.evaluate(() => document.activeElement.id) === 'set-every', 'focus on the schedule');
  check(await every.getAttribute('aria-invalid') === 'true', 'the schedule marked invalid');
  check((await api('GET', `/projects/${cfg.project}`)).body.every === 'off', 'nothing saved');

  // A name another project has: said under Name, the schedule's error gone.
  await every.fill('off');
  await page.getByLabel('Name').fill(cfg.other);
  await b.expecting([/status of 409/], async () => {
    await page.getByRole('button', { name: 'Save settings' }).click();
    await page.locator('#set-name-error [role=alert]').filter({ hasText: 'already exists' }).waitFor();
  });
  check(await page.evaluate(() => document.activeElement.id) === 'set-name', 'focus on the name');
  check(!(await page.locator('#set-every-error').textContent()) && await every.getAttribute('aria-invalid') === null,
    'the old error is gone');
  await shot(page, 'settings-05-name-taken');
  await page.getByLabel('Name').fill(cfg.project);

  await every.fill('10m');
  await page.getByLabel('Pause after failures in a row').fill('4');
  await page.getByLabel('Keep syncs').fill('3');
  await page.getByLabel('Keep days').fill('30');
  await page.getByRole('button', { name: 'Save settings' }).click();
  await page.locator('#project-settings [role=status]').filter({ hasText: 'Saved' }).waitFor();
  await shot(page, 'settings-10-saved');
  let p = (await api('GET', `/projects/${cfg.project}`)).body;
  check(p.every === '10m' && p.max_failures === 4 && p.keep_syncs === 3 && p.keep_days === 30,
    `saved: ${JSON.stringify(p)}`);
  check(p.name === cfg.project && p.max_blob_size === cfg.max_blob_size, 'untouched settings kept');

  await page.reload();
  await every.waitFor();
  check(await every.inputValue() === '10m', 'schedule shown after a reload');
  check(await page.getByLabel('Keep syncs').inputValue() === '3', 'keep syncs shown after a reload');

  // Emptied: no limit again.
  await page.getByLabel('Keep syncs').fill('');
  await page.getByRole('button', { name: 'Save settings' }).click();
  await page.locator('#project-settings [role=status]').filter({ hasText: 'Saved' }).waitFor();
  p = (await api('GET', `/projects/${cfg.project}`)).body;
  check(p.keep_syncs === null && p.keep_days === 30, `keep_syncs cleared only: ${JSON.stringify(p)}`);

  await page.getByRole('navigation', { name: 'Project' }).getByRole('link', { name: 'Overview' }).click();
  await page.locator('.schedule-line').filter({ hasText: 'every 10m' }).waitFor();

  // The project never synced: its compare view says there is nothing to compare, and does not
  // also ask to choose a base and a target.
  await page.goto(`${BASE}/projects/${cfg.project}/compare`);
  await page.getByText('No sync of this project has succeeded yet').waitFor();
  check(!(await page.getByText('Choose a base and a target').count()), 'no instructions for pickers that are not there');
});
