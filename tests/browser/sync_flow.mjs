// Add a project through the form (a bad source first: its error is shown), pick a branch,
// Sync Now: the banner walks the five phases and ends in success with counts; the history
// shows the sync; its changes and files open, text shown escaped and binary not dumped.
import { run, cfg, BASE, check, shot } from './lib.mjs';

// Records every distinct look of the phase dots while the page runs.
async function recordPhases(page) {
  await page.evaluate(() => {
    window.__phaseLog = [];
    const snap = () => {
      const dots = [...document.querySelectorAll('.banner .phase')].map((li) => li.dataset.state);
      const key = dots.join(',');
      const log = window.__phaseLog;
      if (dots.length && (!log.length || log[log.length - 1].key !== key))
        log.push({ key, dots, files: document.querySelector('.banner .files')?.textContent,
          status: document.querySelector('.banner')?.dataset.status });
    };
    new MutationObserver(snap).observe(document.body, { subtree: true, childList: true, attributes: true });
    snap();
  });
}

const RANK = { pending: 0, current: 1, done: 2 };

run('sync_flow', async (b) => {
  const page = await b.page('projects');
  await page.goto(BASE + '/');
  await page.getByRole('heading', { name: 'Projects' }).waitFor();
  check(await page.getByText('No projects yet').isVisible(), 'empty list says so');
  // This server has a --local-root: the hint offers a path and says where.
  const hint = await page.locator('#source-help').textContent();
  check(hint.includes('--local-root') && hint.includes(cfg.local_root), `the hint names the local root: ${hint}`);
  check((await page.getByLabel('Source').getAttribute('placeholder')).startsWith(cfg.local_root + '/'), 'the example path is inside it');
  await shot(page, '01-projects-empty');

  // A bad source: the form says why, and nothing is added.
  await page.getByLabel('Name').fill('demo');
  await page.getByLabel('Source').fill(cfg.repo + '-missing');
  await b.expecting([/status of 422/], async () => {
    await page.getByRole('button', { name: 'Add project' }).click();
    await page.locator('#add-project [role=alert]').filter({ hasText: 'Could not add the project' }).waitFor();
  });
  check(await page.getByLabel('Source').getAttribute('aria-invalid') === 'true', 'source marked invalid');
  // The error sits under the field it is about, and the field's description reads it.
  await page.locator('#source-error [role=alert]').filter({ hasText: 'Could not add the project' }).waitFor();
  check((await page.getByLabel('Source').getAttribute('aria-describedby')).split(' ').includes('source-error'), 'source described by its error');
  check(!(await page.getByText('Checking the source').count()), 'no "checking" left beside the error');
  await shot(page, '02-projects-add-error');
  // A branch the source does not have: the Branch field is the one blamed, not Source.
  await page.getByLabel('Source').fill(cfg.repo);
  await page.getByLabel('Branch (optional)').fill('no-such-branch');
  await b.expecting([/status of 422/], async () => {
    await page.getByRole('button', { name: 'Add project' }).click();
    await page.locator('#project-branch-error [role=alert]').filter({ hasText: 'no-such-branch' }).waitFor();
  });
  check(await page.getByLabel('Branch (optional)').getAttribute('aria-invalid') === 'true', 'branch marked invalid');
  check(await page.getByLabel('Source').getAttribute('aria-invalid') === null, 'source no longer blamed');
  check(!(await page.locator('#source-error').textContent()), 'the old source error is gone');
  check(await page.evaluate(() => document.activeElement.id) === 'project-branch', 'focus on the branch field');
  check(!(await page.getByText('Checking the source').count()), 'no "checking" left beside the branch error');
  await shot(page, '02b-projects-add-branch-error');
  await page.getByLabel('Branch (optional)').fill('');
  // A bad name is caught before asking the server.
  await page.getByLabel('Name').fill('no spaces');
  await page.getByRole('button', { name: 'Add project' }).click();
  await page.locator('#name-error [role=alert]').filter({ hasText: 'Give a name' }).waitFor();

  // The real one, with the keyboard: type, then Enter submits.
  await page.getByLabel('Name').fill('demo');
  await page.getByLabel('Source').fill(cfg.repo);
  await page.getByLabel('Source').press('Enter');
  await page.waitForURL(BASE + '/projects/demo');
  await page.getByRole('heading', { name: 'demo', level: 1 }).waitFor();

  // Branches: the default (main) is preselected; pick feature.
  const select = page.getByLabel('Branch');
  await page.locator('#branch:enabled').waitFor();
  check(await select.inputValue() === 'main', 'default branch preselected');
  const options = await select.locator('option').allTextContents();
  check(options.includes('feature') && options.includes('main (default)'), `branches listed: ${options}`);
  await select.selectOption('feature');
  check(await page.getByText('No sync yet').isVisible(), 'banner before the first sync');
  await shot(page, '03-overview-before');

  await recordPhases(page);
  const syncNow = page.getByRole('button', { name: 'Sync Now' });
  await syncNow.click();
  await page.locator('.banner[data-status=running]').waitFor();
  check(await syncNow.isDisabled(), 'Sync Now disabled while the sync runs');
  await page.waitForSelector('.banner .phase[data-phase=fetch][data-state=current]');
  await shot(page, '04-overview-running');
  await page.waitForSelector('.banner[data-status=succeeded]', { timeout: 30000 });
  await page.locator('#sync-now:enabled').waitFor();
  await shot(page, '05-overview-succeeded');

  // The phases went pending -> current -> done, in order, never backwards.
  const log = await page.evaluate(() => window.__phaseLog);
  const currents = log.map((s) => s.dots.indexOf('current')).filter((i) => i >= 0);
  for (let i = 1; i < currents.length; i++) check(currents[i] >= currents[i - 1], `phases in order: ${JSON.stringify(log)}`);
  for (const want of [0, 1, 2, 3]) check(currents.includes(want), `phase ${want} seen current: ${JSON.stringify(log)}`);
  for (let i = 1; i < log.length; i++)
    log[i].dots.forEach((d, k) => check(RANK[d] >= RANK[log[i - 1].dots[k]], `dot ${k} went back: ${JSON.stringify(log)}`));
  for (const s of log) {
    const c = s.dots.indexOf('current');
    if (c >= 0) s.dots.forEach((d, k) => check(d === (k < c ? 'done' : k === c ? 'current' : 'pending'), `dots around the current one: ${s.key}`));
  }
  check(log.some((s) => /\d+ \/ \d+/.test(s.files || '')), `files done/total shown: ${JSON.stringify(log)}`);
  const final = await page.locator('.banner .phase').evaluateAll((lis) => lis.map((li) => li.dataset.state));
  check(final.every((s) => s === 'done'), `all dots done: ${final}`);
  const counts = await page.locator('.banner .counts').textContent();
  check(counts.includes(`+${cfg.feature_files} added`) && counts.includes('~0 modified') && counts.includes('−0 deleted'), `counts: ${counts}`);
  check(/\d/.test(await page.locator('.banner .elapsed').textContent()), 'elapsed shown');

  // A second sync, back on main: the feature-only files show as deleted.
  await select.selectOption('main');
  await syncNow.click();
  await page.waitForSelector('.banner[data-status=succeeded] .counts >> text=/−3 deleted/', { timeout: 30000 });

  // History: both syncs, newest first.
  await page.getByRole('navigation', { name: 'Project' }).getByRole('link', { name: 'History' }).click();
  await page.waitForURL(/\/history$/);
  const rows = page.locator('.history .sync-row');
  await rows.first().waitFor();
  check(await rows.count() === 2, 'two syncs in the history');
  const first = await rows.nth(0).textContent(), second = await rows.nth(1).textContent();
  check(first.includes('main') && second.includes('feature'), `newest first: ${first} | ${second}`);
  check(first.includes('succeeded') && first.includes('api'), `status and trigger: ${first}`);
  // Each row names its head commit: subject and author (issue 16, commits).
  check(/\bmain\b/.test(await rows.nth(0).locator('.subject').textContent()), `head subject: ${first}`);
  check(second.includes('feature') && second.includes('Test Author'), `subject and author: ${second}`);
  await shot(page, '06-history');

  // The feature sync: changes and files.
  await rows.nth(1).getByRole('link').first().click();
  await page.waitForURL(/\/syncs\/\d+$/);
  await page.locator('.changes').waitFor();
  // Its facts say what it found and how many files its snapshot holds.
  const found = await page.locator('.sync-detail .sync-counts').textContent();
  check(found.includes(`+${cfg.feature_files}`) && found.includes('−0'), `counts among the facts: ${found}`);
  check(await page.locator('.sync-detail .sync-files').textContent() === String(cfg.feature_files), 'files of the snapshot');
  const changes = await page.locator('.change').allTextContents();
  check(changes.length === cfg.feature_files && changes.every((c) => c.startsWith('added')), `changes: ${changes}`);
  check(changes.some((c) => c.includes(cfg.weird_name)), 'odd path shown as text');
  // Its commits: a first sync lists its head commit, with a note saying so.
  const commits = await page.locator('.commits .commit-row').allTextContents();
  check(commits.length === 1 && commits[0].includes('feature'), `commits: ${commits}`);
  check((await page.locator('.commits-note').textContent()).includes('first sync'), 'first-sync note');
  check((await page.locator('.head-commit').textContent()).includes('feature'), 'head commit fact');
  await page.locator('.file-list').getByRole('link', { name: 'src/' }).click();
  await page.locator('.file-list').getByRole('link', { name: 'app.c' }).click();
  await page.locator('.file-text').waitFor();
  check((await page.locator('.file-text').textContent()).includes('int main'), 'text file shown');

  await page.locator('.file-crumbs').getByRole('link', { name: 'root' }).click();
  await page.locator('.file-list').getByRole('link', { name: cfg.weird_name }).click();
  await page.locator('.file-text').waitFor();
  const shown = await page.locator('.file-text').textContent();
  check(shown.includes('<b>not bold</b>') && shown.includes('<script>'), `markup shown as text: ${shown}`);
  check(await page.locator('.file-text b, .file-text script, .file-text img').count() === 0, 'no element made from file content');
  await shot(page, '07-sync-detail-text');

  await page.locator('.file-list').getByRole('link', { name: 'assets/' }).click();
  await page.locator('.file-list').getByRole('link', { name: 'logo.bin' }).click();
  await page.locator('.binary').waitFor();
  check(await page.locator('.file-text').count() === 0, 'binary not dumped');
  await shot(page, '08-sync-detail-binary');

  // Reload on a deep address: the server answers index.html, the page opens the same view.
  await page.reload();
  await page.locator('.binary').waitFor();

  // Phone width: the overview and the projects page.
  const phone = await b.page('phone', { width: 390, height: 844 });
  await phone.goto(BASE + '/projects/demo');
  await phone.waitForSelector('.banner[data-status=succeeded]');
  const overflow = await phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  check(overflow <= 0, `no horizontal scrolling at phone width (${overflow}px)`);
  await shot(phone, '09-overview-phone');
  await phone.goto(BASE + '/');
  await phone.locator('.project-card').first().waitFor();
  await shot(phone, '10-projects-phone');

  // The projects page: the last sync, its commit, failures in a row.
  await page.goto(BASE + '/');
  const card = page.locator('.project-card[data-project=demo]');
  await card.waitFor();
  const text = await card.textContent();
  check(text.includes('succeeded') && text.includes(cfg.main_head.slice(0, 7)) && /Failures in a row\s*0/.test(text), `project card: ${text}`);
  await shot(page, '11-projects');

  // A name already taken: said under Name, which gets the focus.
  await page.getByLabel('Name').fill('demo');
  await page.getByLabel('Source').fill(cfg.repo);
  await b.expecting([/status of 409/], async () => {
    await page.getByRole('button', { name: 'Add project' }).click();
    await page.locator('#name-error [role=alert]').filter({ hasText: 'already exists' }).waitFor();
  });
  check(await page.getByLabel('Name').getAttribute('aria-invalid') === 'true', 'name marked invalid');
  check(await page.getByLabel('Source').getAttribute('aria-invalid') === null, 'source not blamed for a taken name');
  check(await page.evaluate(() => document.activeElement.id) === 'name', 'focus on the name field');
});
