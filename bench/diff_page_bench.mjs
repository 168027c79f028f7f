// The page's diff view of a large change in Debian's chromium (issue 16): from navigation to
// the sync's page until the diff table of the change is visible, and from the click that opens
// it. Run by bench/diff_page_bench.py, which starts `projsync serve` and passes $BENCH (JSON).
import { chromium } from '../tests/node_modules/playwright-core/index.mjs';

const cfg = JSON.parse(process.env.BENCH);
const runs = cfg.runs || 5;
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run'] });
const total = [], open = [];
try {
  for (let i = 0; i < runs; i++) {
    const page = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
    const t0 = performance.now();
    await page.goto(cfg.url);
    const opener = page.locator('.change-open').first();
    await opener.waitFor();
    const t1 = performance.now();
    await opener.click();
    await page.locator('.change-diff table').first().waitFor({ state: 'visible', timeout: 60000 });
    // Visible means laid out and painted: wait for the next frame.
    await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => r())));
    const t2 = performance.now();
    const rows = await page.locator('.change-diff table tr').count();
    total.push(t2 - t0);
    open.push(t2 - t1);
    if (i === 0) console.log(`diff table rows: ${rows}`);
    await page.context().close();
  }
} finally {
  await browser.close();
}
const med = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
console.log(`navigation to diff table visible: median ${med(total).toFixed(0)} ms (runs: ${total.map((x) => x.toFixed(0)).join(', ')})`);
console.log(`click to diff table visible: median ${med(open).toFixed(0)} ms`);
