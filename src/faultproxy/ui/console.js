// The faultproxy console: every proxy with its live figures (polled from /metrics every second),
// enable/disable, toxics added, edited and removed through a form built from /toxic-types, reset.
// Everything goes through the same-origin API (api.js); the page keeps no state of its own beyond
// what the API answered last.
import { api } from './api.js';
import { ToxicForm } from './toxic_form.js';

const POLL_MS = 1000;
const $ = (selector) => document.querySelector(selector);

const state = {
  proxies: {}, // GET /proxies, by name
  metrics: null, // parsed /metrics, or null without -proxy-metrics
  rendered: new Map(), // proxy name -> { section, toxicsKey, ... } (kept so focus survives updates)
  editing: null, // { proxy, toxic } while the dialog is open
};

function element(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  Object.assign(e, props);
  for (const c of children) e.append(c);
  return e;
}

function showError(message) {
  const box = $('#error');
  box.textContent = message;
  box.hidden = !message;
}

// Prometheus text -> [{name, labels, value}] (the exposition's simple lines only).
function parseMetrics(text) {
  const out = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[l[1]] = l[2].replace(/\\(.)/g, (_, c) => (c === 'n' ? '\n' : c));
    }
    out.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return out;
}

function sum(metrics, name, match) {
  if (!metrics) return null;
  let total = 0;
  for (const s of metrics) {
    if (s.name !== name) continue;
    if (Object.entries(match).every(([k, v]) => s.labels[k] === v)) total += s.value;
  }
  return total;
}

function formatBytes(n) {
  if (n === null) return '–';
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) {
    n /= 1000;
    i++;
  }
  return `${i ? n.toFixed(1) : n} ${units[i]}`;
}

const count = (n) => (n === null ? '–' : String(n));

function attributesText(toxic) {
  const parts = Object.entries(toxic.attributes ?? {}).map(([k, v]) => `${k}=${JSON.stringify(v)}`);
  for (const k of ['client_cidr', 'start_after_ms', 'duration_ms']) if (toxic[k] !== undefined) parts.push(`${k}=${JSON.stringify(toxic[k])}`);
  return parts.join(' ') || '—';
}

// ---------------------------------------------------------------------------------------- proxies

let proxyCounter = 0; // element ids: proxy names may hold any character

function buildProxy(proxy) {
  const name = proxy.name;
  const headingId = `proxy-${++proxyCounter}-title`;
  const section = element('section', { className: 'proxy' });
  section.dataset.proxy = name;
  section.setAttribute('aria-labelledby', headingId);

  const enabled = element('input', { type: 'checkbox' });
  enabled.addEventListener('change', () => act(() => api.setEnabled(name, enabled.checked)));
  const address = element('span', { className: 'address' });
  const head = element(
    'div',
    { className: 'proxy-head' },
    element('h2', { id: headingId, textContent: name }),
    address,
    element('label', { className: 'toggle' }, enabled, ' enabled'),
  );

  const figures = element('dl', { className: 'figures' });
  const figure = (key, label) => {
    const dd = element('dd', { textContent: '–' });
    dd.dataset.figure = key;
    figures.append(element('div', {}, element('dt', { textContent: label }), dd));
    return dd;
  };
  const dd = {
    open: figure('open', 'open connections'),
    accepted: figure('accepted', 'accepted'),
    up: figure('up', 'bytes client → upstream'),
    down: figure('down', 'bytes upstream → client'),
    fired: figure('fired', 'toxics fired'),
  };

  const toxicsBody = element('tbody');
  const table = element(
    'table',
    { className: 'toxics' },
    element('caption', { textContent: `Toxics of ${name}` }),
    element(
      'thead',
      {},
      element(
        'tr',
        {},
        ...['name', 'type', 'stream', 'toxicity', 'attributes', 'fired', ''].map((h) => element('th', { scope: 'col', textContent: h })),
      ),
    ),
    toxicsBody,
  );
  const add = element('button', { type: 'button', className: 'add', textContent: 'Add toxic…' });
  add.addEventListener('click', () => openDialog(name, null));
  section.append(head, figures, table, add);
  return { section, enabled, address, dd, toxicsBody, add, toxicsKey: null };
}

function updateProxy(view, proxy) {
  view.address.textContent = `${proxy.listen} → ${proxy.upstream}`;
  view.enabled.checked = proxy.enabled;
  view.section.classList.toggle('disabled', !proxy.enabled);
  const m = state.metrics;
  view.dd.open.textContent = count(sum(m, 'faultproxy_proxy_connections', { proxy: proxy.name }));
  view.dd.accepted.textContent = count(sum(m, 'faultproxy_proxy_accepted_connections_total', { proxy: proxy.name }));
  view.dd.up.textContent = formatBytes(sum(m, 'toxiproxy_proxy_sent_bytes_total', { proxy: proxy.name, direction: 'upstream' }));
  view.dd.down.textContent = formatBytes(sum(m, 'toxiproxy_proxy_sent_bytes_total', { proxy: proxy.name, direction: 'downstream' }));
  view.dd.fired.textContent = count(sum(m, 'faultproxy_toxic_activations_total', { proxy: proxy.name }));

  // Rows are rebuilt only when the toxics changed (keeps focus on their buttons otherwise).
  const key = JSON.stringify(proxy.toxics);
  if (key !== view.toxicsKey) {
    view.toxicsKey = key;
    view.toxicsBody.replaceChildren();
    if (proxy.toxics.length === 0) {
      view.toxicsBody.append(element('tr', {}, element('td', { colSpan: 7, className: 'muted', textContent: 'No toxics.' })));
    }
    for (const toxic of proxy.toxics) view.toxicsBody.append(toxicRow(proxy.name, toxic));
  }
  for (const row of view.toxicsBody.querySelectorAll('tr[data-toxic]')) {
    const cell = row.querySelector('[data-figure=fired]');
    cell.textContent = count(sum(m, 'faultproxy_toxic_activations_total', { proxy: proxy.name, toxic: row.dataset.toxic }));
  }
}

function toxicRow(proxyName, toxic) {
  const edit = element('button', { type: 'button', textContent: 'Edit' });
  edit.setAttribute('aria-label', `Edit ${toxic.name}`);
  edit.addEventListener('click', () => openDialog(proxyName, toxic));
  const remove = element('button', { type: 'button', className: 'danger', textContent: 'Remove' });
  remove.setAttribute('aria-label', `Remove ${toxic.name}`);
  remove.addEventListener('click', async () => {
    await act(() => api.removeToxic(proxyName, toxic.name));
    state.rendered.get(proxyName)?.add.focus(); // the row is gone: focus its proxy's Add button
  });
  const fired = element('td', { textContent: '–' });
  fired.dataset.figure = 'fired';
  const row = element(
    'tr',
    {},
    element('th', { scope: 'row', textContent: toxic.name }),
    element('td', { textContent: toxic.type }),
    element('td', { textContent: toxic.stream }),
    element('td', { textContent: String(toxic.toxicity) }),
    element('td', { className: 'attrs', textContent: attributesText(toxic) }),
    fired,
    element('td', { className: 'row-actions' }, edit, ' ', remove),
  );
  row.dataset.toxic = toxic.name;
  return row;
}

function render() {
  const main = $('#proxies');
  const names = Object.keys(state.proxies).sort();
  for (const [name, view] of state.rendered) {
    if (!state.proxies[name]) {
      view.section.remove();
      state.rendered.delete(name);
    }
  }
  if (names.length === 0) {
    main.replaceChildren(element('p', { className: 'muted', textContent: 'No proxies yet: create them through the API, the CLI or -config.' }));
    return;
  }
  main.querySelector(':scope > p')?.remove();
  let previous = null;
  for (const name of names) {
    let view = state.rendered.get(name);
    if (!view) {
      view = buildProxy(state.proxies[name]);
      state.rendered.set(name, view);
    }
    // Keep the sections in name order without moving those already in place (focus stays).
    const expectedAfter = previous ? previous.nextSibling : main.firstChild;
    if (expectedAfter !== view.section) main.insertBefore(view.section, expectedAfter);
    updateProxy(view, state.proxies[name]);
    previous = view.section;
  }
  $('#metrics-note').hidden = state.metrics !== null;
}

async function refresh() {
  const [proxies, metricsText] = await Promise.all([api.proxies(), api.metrics()]);
  state.proxies = proxies;
  state.metrics = metricsText === null ? null : parseMetrics(metricsText);
  render();
  $('#live').textContent = `updated ${new Date().toLocaleTimeString()}`;
}

// A change through the API, then the new state at once; the API's message if it fails.
async function act(change) {
  try {
    await change();
    showError('');
  } catch (e) {
    showError(e.message);
  }
  try {
    await refresh();
  } catch (e) {
    showError(e.message);
  }
}

// ----------------------------------------------------------------------------------------- dialog

let form;

function openDialog(proxyName, toxic) {
  state.editing = { proxy: proxyName, toxic };
  const dialog = $('#toxic-dialog');
  $('#toxic-error').hidden = true;
  $('#toxic-dialog-title').textContent = toxic ? `Edit toxic ${toxic.name} of ${proxyName}` : `Add a toxic to ${proxyName}`;
  $('#toxic-submit').textContent = toxic ? 'Save' : 'Add';
  if (toxic) form.showEdit(toxic);
  else form.showAdd();
  dialog.showModal();
  dialog.querySelector('#toxic-fields select:not(:disabled), #toxic-fields input:not(:disabled)')?.focus();
}

function closeDialog() {
  const editing = state.editing;
  $('#toxic-dialog').close();
  state.editing = null;
  if (editing) state.rendered.get(editing.proxy)?.add.focus();
}

async function submitDialog(event) {
  event.preventDefault();
  const { proxy, toxic } = state.editing;
  const errorBox = $('#toxic-error');
  try {
    if (toxic) await api.updateToxic(proxy, toxic.name, form.updateBody());
    else await api.addToxic(proxy, form.addBody());
  } catch (e) {
    errorBox.textContent = e.message; // the API's own message; the dialog stays open to fix it
    errorBox.hidden = false;
    return;
  }
  closeDialog();
  await act(async () => {});
}

// ------------------------------------------------------------------------------------------ start

async function start() {
  try {
    const [version, types] = await Promise.all([api.version(), api.toxicTypes()]);
    $('#api-version').textContent = `Toxiproxy ${version.version} API`;
    form = new ToxicForm($('#toxic-fields'), types);
  } catch (e) {
    showError(e.message);
    return;
  }
  $('#toxic-form').addEventListener('submit', submitDialog);
  $('#toxic-cancel').addEventListener('click', closeDialog);
  // Escape: the dialog's own cancel; focus goes back where it belongs.
  $('#toxic-dialog').addEventListener('cancel', (e) => {
    e.preventDefault();
    closeDialog();
  });
  $('#reset').addEventListener('click', () => act(() => api.reset()));
  await act(async () => {});
  let polling = false; // a slow answer is not stacked on by the next poll
  setInterval(async () => {
    if (polling) return;
    polling = true;
    try {
      await refresh();
      if ($('#error').textContent.startsWith('faultproxy is not reachable')) showError('');
    } catch (e) {
      showError(e.message);
    } finally {
      polling = false;
    }
  }, POLL_MS);
}

start();
