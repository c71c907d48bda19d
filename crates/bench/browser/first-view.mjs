// How long the dashboard's first view takes to be on screen, in Debian's chromium, headless:
// from the start of navigation to the tiles shown, to the first chart drawn, and to every chart
// of the overview drawn. Signed in with an API key (as after a reload), cold each run.
//   PARLEY_URL, PARLEY_KEY, PARLEY_PROJECT (several separated by commas: side by side), and
//   RUNS (default 7); PARLEY_ADDRESS adds to the address (range=30d, say).
// Run with playwright-core installed as crates/server/tests/browser/setup.sh does (see
// BENCHMARKS.md for the command).
import { chromium } from 'playwright-core';

const BASE = process.env.PARLEY_URL;
const KEY = process.env.PARLEY_KEY;
const PROJECTS = process.env.PARLEY_PROJECT.split(',').map((p) => `projectId=${p}`).join('&');
const RUNS = Number(process.env.RUNS || 7);
const ZONE = process.env.PARLEY_ZONE || 'Europe/Berlin';

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
});
const times = { tiles: [], firstChart: [], allCharts: [] };
for (let run = 0; run < RUNS; run += 1) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, timezoneId: ZONE });
  await context.addInitScript((key) => {
    sessionStorage.setItem('parley.insights.credentials', JSON.stringify({ key }));
  }, KEY);
  const page = await context.newPage();
  const at = () => page.evaluate(() => performance.now());
  await page.goto(`${BASE}/insights?${PROJECTS}&${process.env.PARLEY_ADDRESS || ''}`, { waitUntil: 'commit' });
  await page.waitForFunction(() => document.querySelector('.tile-slot[aria-busy="false"] .tile'), null, { polling: 5, timeout: 60000 });
  times.tiles.push(await at());
  await page.waitForFunction(() => document.querySelector('figure.chart svg'), null, { polling: 5, timeout: 60000 });
  times.firstChart.push(await at());
  await page.waitForFunction(() => !document.querySelector('#view [aria-busy="true"]'), null, { polling: 5, timeout: 60000 });
  times.allCharts.push(await at());
  if (await page.locator('#view .error').count()) throw new Error(await page.locator('#view .error').first().textContent());
  await context.close();
}
await browser.close();
const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
const max = (values) => Math.max(...values);
console.log(`first view of /insights, ${RUNS} cold loads: median / worst in ms`);
for (const [name, values] of Object.entries(times)) {
  console.log(`${name.padEnd(10)} ${median(values).toFixed(0).padStart(6)} ${max(values).toFixed(0).padStart(6)}`);
}
