// A failing sync shows its phase and reason, the projects page counts the failure, and Retry
// (once the cause is fixed) succeeds.
import { run, cfg, BASE, check, shot, api, git } from './lib.mjs';

run('failure', async (b) => {
  check((await api('POST', '/projects', { name: 'fragile', source: cfg.repo })).status === 201, 'project added');
  const page = await b.page('failure');
  await page.goto(BASE + '/projects/fragile');
  await page.locator('#sync-now:enabled').waitFor();
  await page.getByLabel('Branch').selectOption('doomed');

  // The branch disappears after the page listed it: the sync fails in prepare.
  git(cfg.repo, 'branch', '-D', 'doomed');
  await page.getByRole('button', { name: 'Sync Now' }).click();
  const banner = page.locator('.banner[data-status=failed]');
  await banner.waitFor({ timeout: 30000 });
  const alert = await banner.getByRole('alert').textContent();
  check(alert.includes('Failed in the prepare phase') && alert.includes("branch 'doomed' not found"), `reason shown: ${alert}`);
  check(await page.locator('.banner .phase[data-phase=prepare]').getAttribute('data-state') === 'failed', 'prepare dot failed');
  check(await page.locator('.banner .phase[data-phase=scan]').getAttribute('data-state') === 'pending', 'scan dot pending');
  check(!(await page.getByRole('button', { name: 'Sync Now' }).isDisabled()), 'Sync Now enabled after the failure');
  await shot(page, '20-overview-failed');

  // The projects page counts failures in a row and shows the last error.
  const list = await b.page('failure-list');
  await list.goto(BASE + '/');
  const card = list.locator('.project-card[data-project=fragile]');
  await card.waitFor();
  const text = await card.textContent();
  check(text.includes('failed') && /Failures in a row\s*1/.test(text) && text.includes("branch 'doomed' not found"), `card: ${text}`);
  await shot(list, '21-projects-failure');

  // The history row says why too.
  await page.getByRole('navigation', { name: 'Project' }).getByRole('link', { name: 'History' }).click();
  const row = page.locator('.history .sync-row[data-status=failed]');
  await row.waitFor();
  check((await row.textContent()).includes("branch 'doomed' not found"), 'history row has the reason');
  await page.goBack();

  // Fixed: the branch is back; Retry (the keyboard way) syncs the same branch and succeeds.
  git(cfg.repo, 'branch', 'doomed', 'main');
  const retry = page.getByRole('button', { name: 'Retry' });
  await retry.waitFor();
  await retry.focus();
  await page.keyboard.press('Enter');
  await page.waitForSelector('.banner[data-status=succeeded]', { timeout: 30000 });
  check((await page.locator('.banner h2').textContent()).includes('doomed'), 'retried the same branch');
  await list.reload();
  await card.waitFor();
  check(/Failures in a row\s*0/.test(await card.textContent()), 'failures reset after success');
});
