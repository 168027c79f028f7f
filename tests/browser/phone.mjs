// Every view at a phone's width (390 px): nothing may be wider than the screen, so the page never
// scrolls sideways; long lines of a file scroll inside their own box. Views: the projects, a
// project's overview, its history (with a failed sync's long error), a sync with its changes and
// a file open, a comparison of syncs, and memory with a search.
import { BASE, cfg, check, launch, shot } from './lib.mjs';

const WIDTH = 390;

async function fits(page, label) {
  const { scroll, widest } = await page.evaluate(() => {
    let widest = '';
    let max = 0;
    for (const el of document.querySelectorAll('body *')) {
      const r = el.getBoundingClientRect();
      if (r.right > max + 0.5 && r.width > 0) { max = r.right; widest = `${el.tagName.toLowerCase()}.${el.className}`; }
    }
    return { scroll: document.documentElement.scrollWidth, widest: `${widest} ends at ${Math.round(max)}px` };
  });
  check(scroll <= WIDTH, `${label}: the page is ${scroll}px wide at ${WIDTH}px (widest: ${widest})`);
  await shot(page, `60-phone-${label}`);
}

const b = await launch();
try {
  const page = await b.page('phone', { width: WIDTH, height: 844 });
  const p = encodeURIComponent(cfg.project);

  await page.goto(BASE + '/');
  await page.locator('.project-card').first().waitFor();
  await fits(page, 'projects');

  await page.goto(`${BASE}/projects/${p}`);
  await page.waitForSelector('.banner[data-status=failed]');  // with its long error
  await fits(page, 'overview');
  // The four project tabs are all in sight, none cut off at the edge of their scrolling bar.
  const cut = await page.evaluate(() => {
    const bar = document.querySelector('.tabs ul').getBoundingClientRect();
    return [...document.querySelectorAll('.tabs a')].filter((a) => a.getBoundingClientRect().right > bar.right + 0.5)
      .map((a) => a.textContent);
  });
  check(!cut.length, `project tabs cut off at ${WIDTH}px: ${cut}`);

  await page.goto(`${BASE}/projects/${p}/history`);
  await page.locator('.sync-row').nth(1).waitFor();
  await fits(page, 'history');

  await page.goto(`${BASE}/projects/${p}/syncs/${cfg.sync_id}`);
  await page.locator('.change').first().waitFor();
  await fits(page, 'sync');

  const file = encodeURIComponent(cfg.long_file);
  await page.goto(`${BASE}/projects/${p}/syncs/${cfg.sync_id}?file=${file}`);
  await page.locator('.file-text').waitFor();
  await fits(page, 'file');
  // The long line is still there to read: its box scrolls, the page does not.
  const inner = await page.locator('.code-view').evaluate((el) => el.scrollWidth > el.clientWidth);
  check(inner, 'the long line scrolls inside the file box');

  // Comparing (the one succeeded sync with itself: the picker and what it says).
  await page.goto(`${BASE}/projects/${p}/compare/${cfg.sync_id}..${cfg.sync_id}`);
  await page.locator('.compare-result .notice').waitFor();
  await fits(page, 'compare');

  await page.goto(`${BASE}/projects/${p}/memory?q=deploy&superseded=1`);
  await page.locator('.memory-entry').first().waitFor();
  await fits(page, 'memory');
} finally {
  await b.close();
}
