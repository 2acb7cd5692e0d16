#!/usr/bin/env node
// Opens each HTML report in headless Chromium (Debian's, driven by playwright-core, which downloads no
// browser), checks it and keeps a screenshot of it. `./dev test` runs it over the reports there are.
//
//   node features/tools/check-reports.mjs [--browser /usr/bin/chromium]
//     --page reports/soak/index.html --shot reports/soak.png --charts
//     --page reports/failure-modes.html --shot reports/failure-modes.png --cucumber
//
// Every page: loads with no console error and no uncaught exception. --charts: it drew at least one
// uPlot chart, every chart in window.reportCharts has a canvas, and each series has data (a non-empty
// array with a number in it). --cucumber: cucumber's report rendered its scenarios with their
// verdicts. Prints a PASS or FAIL line per page and `reports: N passed, N failed`; exits 1 on a failure.
import path from 'node:path';

import { chromium } from 'playwright-core';

const args = process.argv.slice(2);
let browserPath = '/usr/bin/chromium';
const pages = [];
for (let i = 0; i < args.length; i++) {
  const a = args[i];
  if (a === '--browser') browserPath = args[++i];
  else if (a === '--page') pages.push({ file: args[++i], shot: null, kind: 'plain' });
  else if (a === '--shot' && pages.length) pages.at(-1).shot = args[++i];
  else if ((a === '--charts' || a === '--cucumber') && pages.length) pages.at(-1).kind = a.slice(2);
  else {
    console.error(`check-reports: unexpected argument '${a}'`);
    process.exit(2);
  }
}
if (!pages.length) {
  console.error('check-reports: no --page given');
  process.exit(2);
}

// What is wrong with the charts of the page, or null.
async function checkCharts(page) {
  return page.evaluate(() => {
    const charts = window.reportCharts;
    if (!Array.isArray(charts) || charts.length === 0) return 'no chart drawn (window.reportCharts is empty)';
    for (const [k, u] of charts.entries()) {
      const name = u.title ?? `chart ${k + 1}`;
      if (!u.root?.isConnected || !u.root.querySelector('canvas')) return `${name}: no canvas in the page`;
      if (!(u.data?.[0]?.length > 0)) return `${name}: no x values`;
      for (let s = 1; s < u.data.length; s++) {
        if (!u.data[s].some((v) => typeof v === 'number' && Number.isFinite(v))) return `${name}: series ${s} has no data`;
      }
    }
    return null;
  });
}

// Cucumber's report is rendered by a script from the messages it embeds: wait for the scenarios and
// their statuses to show.
async function checkCucumber(page) {
  try {
    // Its header: "100% (262 / 262) passed" (or "N failed").
    await page.waitForFunction(() => /\(\d+ \/ \d+\) (passed|failed)/.test(document.body.innerText), null, { timeout: 15_000 });
  } catch {
    return 'the report shows no scenario count and verdicts';
  }
  return null;
}

// One page of the report at a time would spend most of the time waiting on the browser: all at once.
async function check(browser, p) {
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  const errors = [];
  page.on('console', (msg) => msg.type() === 'error' && errors.push(`console error: ${msg.text()}`));
  page.on('pageerror', (err) => errors.push(`uncaught: ${err.message}`));
  try {
    await page.goto(`file://${path.resolve(p.file)}`, { waitUntil: 'load', timeout: 20_000 });
    let problem = null;
    if (p.kind === 'charts') problem = await checkCharts(page);
    else if (p.kind === 'cucumber') problem = await checkCucumber(page);
    const n = p.kind === 'charts' ? await page.evaluate(() => window.reportCharts.length).catch(() => 0) : 0;
    if (!problem && errors.length) problem = errors.join('; ');
    if (p.shot) await page.screenshot({ path: p.shot, fullPage: true });
    if (problem) throw new Error(problem);
    const what = p.kind === 'charts' ? `, ${n} charts with data` : p.kind === 'cucumber' ? ', scenarios and verdicts shown' : '';
    return { ok: true, line: `PASS ${p.file}: loads without errors${what}${p.shot ? ` (screenshot ${p.shot})` : ''}` };
  } catch (err) {
    const more = errors.length && !err.message.includes(errors[0]) ? `; ${errors.join('; ')}` : '';
    return { ok: false, line: `FAIL ${p.file}: ${err.message.split('\n')[0]}${more}` };
  } finally {
    await page.close();
  }
}

const browser = await chromium.launch({ executablePath: browserPath, args: ['--no-sandbox', '--headless=new'] });
let results;
try {
  results = await Promise.all(pages.map((p) => check(browser, p)));
} finally {
  await browser.close();
}
for (const r of results) console.log(r.line);
const passed = results.filter((r) => r.ok).length;
console.log(`reports: ${passed} passed, ${results.length - passed} failed`);
process.exit(passed === results.length ? 0 : 1);
