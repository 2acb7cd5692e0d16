// faultproxy's HTTP API as the console uses it: same origin, JSON bodies, and the console's header
// (X-Faultproxy-Console), without which the API refuses browsers as Toxiproxy does. Errors are
// thrown as ApiError carrying the API's own message.

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function request(method, path, body) {
  const init = { method, cache: 'no-store', headers: { 'X-Faultproxy-Console': '1' } };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (e) {
    throw new ApiError(0, `faultproxy is not reachable (${e.message})`);
  }
  const text = await res.text();
  if (!res.ok) {
    // The API's errors: {"error": "...", "status": N} (Go's http.Error body), or plain text.
    let message = text.trim();
    try {
      const parsed = JSON.parse(text);
      if (parsed && typeof parsed.error === 'string') message = parsed.error;
    } catch {
      // not JSON: the text as it came
    }
    throw new ApiError(res.status, `${method} ${path}: ${res.status} ${message || res.statusText}`);
  }
  return text;
}

async function json(method, path, body) {
  const text = await request(method, path, body);
  return text ? JSON.parse(text) : null;
}

const p = (name) => `/proxies/${encodeURIComponent(name)}`;
const t = (proxy, toxic) => `${p(proxy)}/toxics/${encodeURIComponent(toxic)}`;

export const api = {
  version: () => json('GET', '/version'),
  toxicTypes: () => json('GET', '/toxic-types'),
  proxies: () => json('GET', '/proxies'),
  setEnabled: (proxy, enabled) => json('PATCH', p(proxy), { enabled }),
  addToxic: (proxy, toxic) => json('POST', `${p(proxy)}/toxics`, toxic),
  updateToxic: (proxy, name, changes) => json('PATCH', t(proxy, name), changes),
  removeToxic: (proxy, name) => request('DELETE', t(proxy, name)),
  reset: () => request('POST', '/reset'),
  // Prometheus text; null when faultproxy runs without -proxy-metrics (404).
  metrics: async () => {
    try {
      return await request('GET', '/metrics');
    } catch (e) {
      if (e.status === 404) return null;
      throw e;
    }
  },
};
