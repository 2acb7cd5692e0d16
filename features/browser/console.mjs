// The faultproxy console in a real browser: Debian's headless Chromium driven by playwright-core
// (which downloads no browser). Starts faultproxy (the debug build unless FAULTPROXY_BIN says
// otherwise) on a free port with an echo server as the upstream of one proxy, then, through the
// console's own controls, adds a toxic, sees it in the API and the list, edits it, sees an API
// error in the form, sees live figures move, removes it, disables and enables the proxy, resets;
// and a page of another origin tries to change faultproxy and must fail.
//
//   node features/browser/console.mjs [--reports DIR]
//
// Prints `ok - <step>` or `not ok - <step>: <why>` per step and a last line
// `console: N passed, M failed`; exits 1 if anything failed. Writes DIR/console.png (the console
// with a toxic and live figures) and DIR/console-form.png (its edit form); on failure DIR/console-failure.png, and the browser's console
// messages to DIR/console-browser.log.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { freePort } from '../support/ports.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const args = process.argv.slice(2);
const REPORTS = path.resolve(args.includes('--reports') ? args[args.indexOf('--reports') + 1] : path.join(ROOT, 'reports'));
const FAULTPROXY = process.env.FAULTPROXY_BIN ?? path.join(ROOT, 'build/debug/src/faultproxy/faultproxy');
const CHROMIUM = process.env.CHROMIUM_BIN ?? '/usr/bin/chromium';
const TIMEOUT_MS = 10_000; // per browser expectation: generous, for a loaded 2-core machine

const results = { passed: 0, failed: 0 };
const browserLog = [];
const failedResponses = []; // the console page's answers >= 400: only the one provoked below is expected
const started = []; // child processes, stopped whatever happens

// The proxy's upstream: echoes every byte back.
function startEcho() {
  return new Promise((resolve) => {
    const server = net.createServer((c) => c.pipe(c));
    server.listen(0, '127.0.0.1', () => resolve(server));
  });
}

// A page of another origin (another port) that tries every way a page has to change faultproxy.
function startOtherOrigin(apiBase) {
  const page = `<!doctype html><title>other origin</title><body>
<form id="f" method="POST" action="${apiBase}/proxies" enctype="text/plain" target="sink">
<input name='{"name":"from_form","listen":"127.0.0.1:0","upstream":"127.0.0.1:1","x":"' value='"}'></form>
<iframe name="sink"></iframe>
<script>
window.attempts = (async () => {
  const out = {};
  const body = JSON.stringify({ name: 'from_fetch', listen: '127.0.0.1:0', upstream: '127.0.0.1:1' });
  try {
    const r = await fetch('${apiBase}/proxies', { method: 'POST', body,
      headers: { 'Content-Type': 'application/json', 'X-Faultproxy-Console': '1' } });
    out.withHeader = 'answered ' + r.status;
  } catch (e) { out.withHeader = 'blocked'; }
  try {
    await fetch('${apiBase}/proxies', { method: 'POST', mode: 'no-cors', body: body.replace('from_fetch', 'from_no_cors') });
    out.noCors = 'sent';
  } catch (e) { out.noCors = 'blocked'; }
  try {
    await fetch('${apiBase}/reset', { method: 'POST', mode: 'no-cors' });
    out.reset = 'sent';
  } catch (e) { out.reset = 'blocked'; }
  document.getElementById('f').submit();
  return out;
})();
</script></body>`;
  return new Promise((resolve) => {
    const server = http.createServer((req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
      res.end(page);
    });
    server.listen(0, '127.0.0.1', () => resolve(server));
  });
}

// The API as a non-browser client sees it.
async function apiGet(base, p) {
  const res = await fetch(base + p);
  if (!res.ok) throw new Error(`GET ${p}: ${res.status} ${await res.text()}`);
  return res.json();
}

async function apiSend(base, method, p, body) {
  const res = await fetch(base + p, { method, body: body === undefined ? undefined : JSON.stringify(body) });
  if (!res.ok) throw new Error(`${method} ${p}: ${res.status} ${await res.text()}`);
}

async function waitFor(what, check, timeoutMs = TIMEOUT_MS) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      const v = await check();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${last.message}` : ''}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function assert(cond, message) {
  if (!cond) throw new Error(message);
}

async function startFaultproxy(port, upstreamPort, dir) {
  const config = path.join(dir, 'proxies.json');
  fs.writeFileSync(config, JSON.stringify([{ name: 'db', listen: '127.0.0.1:0', upstream: `127.0.0.1:${upstreamPort}` }]));
  const logPath = path.join(dir, 'faultproxy.log');
  const log = fs.openSync(logPath, 'w');
  const child = spawn(FAULTPROXY, ['-host', '127.0.0.1', '-port', String(port), '-proxy-metrics', '-config', config], {
    stdio: ['ignore', log, log],
  });
  started.push(child);
  let exited = null;
  child.on('exit', (code, signal) => (exited = `exited with ${code ?? signal}`));
  child.on('error', (e) => (exited = `did not start: ${e.message}`));
  await waitFor('faultproxy to answer', async () => {
    if (exited) throw new Error(`faultproxy ${exited}: ${fs.readFileSync(logPath, 'utf8')}`);
    return (await fetch(`http://127.0.0.1:${port}/version`)).ok;
  });
  return { child, logPath };
}

// Sends `text` through the proxy and waits for the echo.
function echoThrough(port, text) {
  return new Promise((resolve, reject) => {
    const c = net.connect(port, '127.0.0.1', () => c.write(text));
    let got = '';
    c.setTimeout(TIMEOUT_MS, () => c.destroy(new Error('no echo through the proxy')));
    c.on('data', (d) => {
      got += d;
      if (got.length >= text.length) {
        c.end();
        resolve(got);
      }
    });
    c.on('error', reject);
  });
}

async function main() {
  fs.mkdirSync(REPORTS, { recursive: true });
  for (const f of ['console.png', 'console-form.png', 'console-failure.png', 'console-browser.log']) fs.rmSync(path.join(REPORTS, f), { force: true });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'faultproxy-console-'));
  const echo = await startEcho();
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const fp = await startFaultproxy(port, echo.address().port, dir);
  const other = await startOtherOrigin(base);
  const launchArgs = process.getuid?.() === 0 ? ['--no-sandbox'] : [];
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: launchArgs });
  const page = await browser.newPage({ viewport: { width: 1366, height: 768 } }); // a laptop screen
  page.setDefaultTimeout(TIMEOUT_MS);
  page.on('console', (m) => browserLog.push(`[${m.type()}] ${m.text()}`));
  page.on('pageerror', (e) => browserLog.push(`[pageerror] ${e.message}`));
  page.on('response', (r) => {
    if (r.status() >= 400) failedResponses.push(`${r.request().method()} ${new URL(r.url()).pathname} ${r.status()}`);
  });
  const db = page.locator('section[data-proxy="db"]');
  const dialog = page.locator('#toxic-dialog');
  let failed = false;

  const step = async (name, fn) => {
    if (failed) return;
    try {
      await fn();
      results.passed++;
      console.log(`ok - ${name}`);
    } catch (e) {
      results.failed++;
      failed = true;
      console.log(`not ok - ${name}: ${e.message.split('\n')[0]}`);
    }
  };

  try {
    await step('the console loads with its security headers and lists the proxy', async () => {
      const res = await page.goto(`${base}/ui`);
      assert(res.status() === 200, `GET /ui: ${res.status()}`);
      const csp = res.headers()['content-security-policy'] ?? '';
      assert(csp.startsWith("default-src 'self'"), `Content-Security-Policy: ${csp}`);
      await db.locator('.address').filter({ hasText: `127.0.0.1:${echo.address().port}` }).waitFor();
      await page.locator('#api-version').filter({ hasText: 'Toxiproxy 2.12.0 API' }).waitFor();
    });

    await step('Escape closes the toxic form and focus returns to its button', async () => {
      const add = db.getByRole('button', { name: 'Add toxic…' });
      await add.click();
      await dialog.waitFor({ state: 'visible' });
      await page.keyboard.press('Escape');
      await dialog.waitFor({ state: 'hidden' });
      assert(await add.evaluate((e) => e === document.activeElement), 'focus is not on "Add toxic…"');
    });

    await step('a toxic added through the form (keyboard: Enter submits) is in the API and the list', async () => {
      await page.keyboard.press('Enter'); // the focused "Add toxic…" button
      await dialog.waitFor({ state: 'visible' });
      await dialog.getByLabel('type', { exact: true }).selectOption('latency');
      await dialog.getByLabel('name', { exact: true }).fill('slow');
      await dialog.getByLabel('latency', { exact: true }).fill('150');
      await dialog.getByLabel('jitter', { exact: true }).fill('10');
      await dialog.getByLabel('jitter', { exact: true }).press('Enter');
      await dialog.waitFor({ state: 'hidden' });
      const toxics = await apiGet(base, '/proxies/db/toxics');
      const t = toxics.find((x) => x.name === 'slow');
      assert(t && t.type === 'latency' && t.attributes.latency === 150 && t.attributes.jitter === 10,
        `API has ${JSON.stringify(toxics)}`);
      await db.locator('tr[data-toxic="slow"]').filter({ hasText: 'latency=150' }).waitFor();
    });

    await step("an invalid toxic shows the API's own error in the form", async () => {
      await db.getByRole('button', { name: 'Add toxic…' }).click();
      await dialog.getByLabel('type', { exact: true }).selectOption('packet_loss');
      await dialog.getByLabel('loss_rate', { exact: true }).fill('2');
      await dialog.getByRole('button', { name: 'Add' }).click();
      await page.locator('#toxic-error').filter({ hasText: 'loss_rate: not between 0 and 1: 2' }).waitFor();
      await page.keyboard.press('Escape');
      await dialog.waitFor({ state: 'hidden' });
      assert((await apiGet(base, '/proxies/db/toxics')).length === 1, 'the invalid toxic was added');
    });

    await step('the toxic edited through the form changes in the API and the list', async () => {
      await db.getByRole('button', { name: 'Edit slow' }).click();
      await dialog.waitFor({ state: 'visible' });
      assert(await dialog.getByLabel('name', { exact: true }).isDisabled(), 'name is editable');
      await dialog.getByLabel('latency', { exact: true }).fill('300');
      await dialog.getByLabel('toxicity', { exact: true }).fill('0.5');
      await page.screenshot({ path: path.join(REPORTS, 'console-form.png') });
      await dialog.getByRole('button', { name: 'Save' }).click();
      await dialog.waitFor({ state: 'hidden' });
      const t = await apiGet(base, '/proxies/db/toxics/slow');
      assert(t.attributes.latency === 300 && t.toxicity === 0.5, `API has ${JSON.stringify(t)}`);
      await db.locator('tr[data-toxic="slow"]').filter({ hasText: 'latency=300' }).waitFor();
      await apiSend(base, 'PATCH', '/proxies/db/toxics/slow', { toxicity: 1 }); // acts on every connection below
    });

    await step('live figures follow traffic through the proxy', async () => {
      const { listen } = await apiGet(base, '/proxies/db');
      const got = await echoThrough(Number(listen.split(':').pop()), 'hello through faultproxy');
      assert(got === 'hello through faultproxy', `echo: ${got}`);
      await db.locator('dd[data-figure="accepted"]').filter({ hasText: /^[1-9]/ }).waitFor();
      await db.locator('tr[data-toxic="slow"] td[data-figure="fired"]').filter({ hasText: /^[1-9]/ }).waitFor();
      await db.locator('dd[data-figure="down"]').filter({ hasText: /^[1-9]/ }).waitFor();
      await page.screenshot({ path: path.join(REPORTS, 'console.png') });
    });

    await step('the toxic removed through the console is gone from the API and the list', async () => {
      await db.getByRole('button', { name: 'Remove slow' }).click();
      await db.locator('tr[data-toxic="slow"]').waitFor({ state: 'detached' });
      const toxics = await apiGet(base, '/proxies/db/toxics');
      assert(toxics.length === 0, `API has ${JSON.stringify(toxics)}`);
    });

    await step('the proxy disabled and enabled through the console', async () => {
      const enabled = db.getByLabel('enabled');
      await enabled.uncheck();
      await waitFor('the proxy disabled in the API', async () => (await apiGet(base, '/proxies/db')).enabled === false);
      await page.locator('section.proxy.disabled[data-proxy="db"]').waitFor();
      await enabled.check();
      await waitFor('the proxy enabled in the API', async () => (await apiGet(base, '/proxies/db')).enabled === true);
    });

    await step('changes made elsewhere show within a poll, and Reset all clears them', async () => {
      await apiSend(base, 'POST', '/proxies/db/toxics', { name: 'cut', type: 'timeout', attributes: { timeout: 0 } });
      await apiSend(base, 'PATCH', '/proxies/db', { enabled: false });
      await db.locator('tr[data-toxic="cut"]').waitFor();
      await page.getByRole('button', { name: 'Reset all' }).click();
      await db.locator('tr[data-toxic="cut"]').waitFor({ state: 'detached' });
      const p = await apiGet(base, '/proxies/db');
      assert(p.enabled && p.toxics.length === 0, `API has ${JSON.stringify(p)}`);
    });

    await step('every toxic type has a form the API accepts with its defaults', async () => {
      const types = await (await fetch(`${base}/toxic-types`)).json();
      for (const t of types.types) {
        await db.getByRole('button', { name: 'Add toxic…' }).click();
        await dialog.getByLabel('type', { exact: true }).selectOption(t.name);
        await dialog.getByLabel('name', { exact: true }).fill(`all_${t.name}`);
        await dialog.getByRole('button', { name: 'Add' }).click();
        await dialog.waitFor({ state: 'hidden' });
      }
      const names = (await apiGet(base, '/proxies/db/toxics')).map((x) => x.name).sort();
      const want = types.types.map((t) => `all_${t.name}`).sort();
      assert(JSON.stringify(names) === JSON.stringify(want), `API has ${names.join(',')}`);
      await apiSend(base, 'POST', '/reset');
    });

    await step('a page of another origin cannot change faultproxy', async () => {
      const before = await apiGet(base, '/proxies');
      await apiSend(base, 'POST', '/proxies/db/toxics', { name: 'keep', type: 'noop' });
      const evil = await browser.newPage();
      evil.on('console', (m) => browserLog.push(`[other origin ${m.type()}] ${m.text()}`));
      await evil.goto(`http://127.0.0.1:${other.address().port}/`);
      const attempts = await evil.evaluate(() => window.attempts);
      assert(attempts.withHeader === 'blocked', `the console's header from another origin: ${attempts.withHeader}`);
      await evil.waitForTimeout(500); // the form's POST
      const after = await apiGet(base, '/proxies');
      assert(JSON.stringify(Object.keys(after)) === JSON.stringify(Object.keys(before)), `proxies now ${Object.keys(after)}`);
      assert(after.db.toxics.some((t) => t.name === 'keep'), 'a cross-origin POST /reset went through');
      await evil.close();
    });

    await step('no console errors in the browser, no failed request but the invalid toxic', async () => {
      // Chromium logs every answer >= 400 as "Failed to load resource": those are judged by URL.
      const errors = browserLog.filter(
        (l) => (l.startsWith('[error]') && !l.includes('Failed to load resource')) || l.startsWith('[pageerror]'),
      );
      assert(errors.length === 0, errors.join(' | '));
      const unexpected = failedResponses.filter((r) => r !== 'POST /proxies/db/toxics 400');
      assert(unexpected.length === 0, `failed requests: ${unexpected.join(', ')}`);
    });
  } finally {
    if (failed) {
      await page.screenshot({ path: path.join(REPORTS, 'console-failure.png'), fullPage: true }).catch(() => {});
      fs.writeFileSync(path.join(REPORTS, 'console-browser.log'), browserLog.join('\n') + '\n');
      for (const line of browserLog.slice(-20)) console.log(`  browser: ${line}`);
      console.log(`browser console: ${path.join(REPORTS, 'console-browser.log')}, screenshot: ${path.join(REPORTS, 'console-failure.png')}, faultproxy log: ${fp.logPath}`);
    }
    await browser.close();
    echo.close();
    other.close();
    if (!failed) fs.rmSync(dir, { recursive: true, force: true });
  }
}

try {
  await main();
} catch (e) {
  results.failed++;
  console.log(`not ok - setup: ${e.message}`);
}
for (const child of started) child.kill('SIGTERM');
console.log(`console: ${results.passed} passed, ${results.failed} failed`);
process.exit(results.failed ? 1 : 0);
