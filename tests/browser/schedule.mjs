// Schedules on the page: a project with --every shows its interval and when its next sync is
// due; a paused project shows a badge with the reason and since when, and Resume clears it;
// both views fit a 390 px phone screen.
import { cpSync } from 'node:fs';
import { run, cfg, BASE, check, shot, api } from './lib.mjs';

async function fits(page, what) {
  const { width, wide } = await page.evaluate(() => ({
    width: document.documentElement.scrollWidth,
    // The innermost elements reaching past the screen, to name the culprit on failure.
    wide: [...document.querySelectorAll('body *')].filter((e) => !e.closest('.tabs') && e.getBoundingClientRect().right > 391
      && ![...e.children].some((c) => c.getBoundingClientRect().right > 391))
      .slice(0, 3).map((e) => `${e.tagName.toLowerCase()}.${e.className}: ${e.textContent.slice(0, 80)}`),
  }));
  check(width <= 390, `${what} fits 390 px (scrollWidth ${width}; ${wide.join(' | ')})`);
}

run('schedule', async (b) => b.expecting([/status of 502/], async () => {
  const { body: timed } = await api('GET', '/projects/timed');
  check(timed.every === '10m' && timed.next_sync_at, `timed project is scheduled: ${JSON.stringify(timed)}`);
  const dueIn = (Date.parse(timed.next_sync_at) - Date.now()) / 60000;
  check(dueIn > 8 && dueIn <= 11, `due in about 10 min: ${dueIn}`);

  for (const [label, viewport] of [['desk', { width: 1280, height: 900 }], ['phone', { width: 390, height: 844 }]]) {
    const page = await b.page(`schedule-${label}`, viewport);

    // The projects page: the schedule line with the next due time; the paused badge.
    await page.goto(BASE + '/');
    const line = page.locator('.project-card[data-project=timed] .schedule-line');
    await line.waitFor();
    const lineText = await line.textContent();
    check(lineText.includes('every 10m') && /next sync in (9|10) min/.test(lineText), `schedule line: ${lineText}`);
    check(await line.locator('time.next-sync').getAttribute('datetime') === timed.next_sync_at, 'next due time as datetime');
    const paused = page.locator('.project-card[data-project=gone] .paused-line');
    await paused.waitFor();
    const pausedText = await paused.textContent();
    check(await paused.locator('.badge-paused').isVisible(), 'paused badge visible');
    check(pausedText.includes('failed 2 times in a row') && pausedText.includes('the source is gone'), `reason: ${pausedText}`);
    check(/since .*ago|since just now/.test(pausedText), `since when: ${pausedText}`);
    check(await paused.locator('time').getAttribute('datetime') !== null, 'paused_at as datetime');
    if (label === 'phone') await fits(page, 'projects page');
    await shot(page, `60-schedule-projects-${label}`);

    // The overview of each.
    await page.goto(BASE + '/projects/timed');
    await page.locator('.schedule .schedule-line').waitFor();
    check((await page.locator('.schedule .schedule-line').textContent()).includes('every 10m'), 'overview schedule line');
    if (label === 'phone') await fits(page, 'scheduled overview');
    await page.goto(BASE + '/projects/gone');
    await page.locator('.schedule .paused-line .badge-paused').waitFor();
    await page.locator('.notice-warn').waitFor(); // the gone source's branches: a long path
    if (label === 'phone') await fits(page, 'paused overview');
    await shot(page, `61-schedule-paused-${label}`);
  }

  // The source is back; Resume on the overview: the badge goes, the schedule line comes back,
  // the store agrees (the sync the resume makes due succeeds, so nothing fails again).
  cpSync(cfg.backup, cfg.gone, { recursive: true });
  const page = await b.page('schedule-resume', { width: 390, height: 844 });
  await page.goto(BASE + '/projects/gone');
  await page.getByRole('button', { name: 'Resume' }).click();
  await page.locator('.schedule .schedule-line').waitFor();
  check(await page.locator('.badge-paused').count() === 0, 'badge gone after Resume');
  const { body: resumed } = await api('GET', '/projects/gone');
  check(resumed.state === 'active' && resumed.failures_in_row === 0 && resumed.paused_reason === null,
    `resumed in the store: ${JSON.stringify(resumed)}`);
  await fits(page, 'resumed overview');
  await shot(page, '62-schedule-resumed-phone');
}));
