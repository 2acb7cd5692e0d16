// Fault injection, driven only through the npm package toxiproxy-node-client: faultproxy must be a
// drop-in Toxiproxy, and a real, unmodified Toxiproxy client is the proof.
import { Toxiproxy } from 'toxiproxy-node-client';

import { stack } from './stack.js';

export const toxiproxy = new Toxiproxy(stack.faultproxyUrl);

// Toxics that the catalog added and has not removed yet, by proxy name (Toxic objects of the client).
const added = new Map();
// Proxies that got a fault since the last reset.
const touched = new Set();

async function proxy(name) {
  try {
    return await toxiproxy.get(name);
  } catch (err) {
    throw new Error(`faultproxy: cannot get proxy '${name}' at ${stack.faultproxyUrl}: ${err.message}`);
  }
}

// Shows what a scenario applied in cucumber's report (reports/failure-modes.html): the toxic as it
// was sent to faultproxy, or the proxy's new enabled state. `world`: the scenario's (none: no record).
export function attachApplied(world, proxy, applied) {
  const title = applied.toxic
    ? `applied: ${applied.toxic.type} toxic (${applied.toxic.stream}) on '${proxy}'`
    : `applied: '${proxy}' ${applied.enabled ? 'enabled' : 'disabled'}`;
  world?.attach(JSON.stringify({ proxy, ...applied }, null, 2), { mediaType: 'application/json', fileName: title });
}

export async function setEnabled(name, enabled, world) {
  touched.add(name);
  const p = await proxy(name);
  const updated = await p.update({ ...p.toJson(), enabled });
  if (updated.enabled !== enabled) {
    throw new Error(`faultproxy: proxy '${name}' answered enabled=${updated.enabled} after being set to ${enabled}`);
  }
  attachApplied(world, name, { enabled });
}

// Adds a toxic (Toxiproxy semantics: `stream` defaults to downstream, toxicity to 1) and checks that
// faultproxy echoes it back as Toxiproxy would. `durationMs`: faultproxy's own toxic field
// `duration_ms` (the toxic removes itself that long after it was added; the client passes the field
// through as it came). `world`: the scenario, whose report then shows the toxic.
export async function addToxic(name, { type, stream = 'downstream', attributes, toxicity = 1, durationMs }, world) {
  touched.add(name);
  const p = await proxy(name);
  const toxicName = `${type}_${stream}_${(added.get(name)?.length ?? 0) + 1}`;
  const body = { name: toxicName, type, stream, toxicity, attributes };
  if (durationMs !== undefined) body.duration_ms = durationMs;
  let toxic;
  try {
    toxic = await p.addToxic(body);
  } catch (err) {
    throw new Error(`faultproxy: adding a ${type} toxic (${stream}, ${JSON.stringify(attributes)}) to '${name}' failed: ${err.message}`);
  }
  attachApplied(world, name, { toxic: body });
  for (const [k, v] of Object.entries(attributes)) {
    if (toxic.attributes?.[k] !== v) {
      throw new Error(`faultproxy echoed ${type}.${k}=${toxic.attributes?.[k]} for '${name}', expected ${v}`);
    }
  }
  if (durationMs) {
    // The client keeps only Toxiproxy's fields of the answer: faultproxy's list must show it.
    const listed = (await listToxics(name)).find((t) => t.name === toxicName);
    if (listed && listed.duration_ms !== durationMs) {
      throw new Error(`faultproxy lists the ${type} toxic of '${name}' with duration_ms=${listed.duration_ms}, expected ${durationMs}`);
    }
  }
  toxic.removesItself = durationMs !== undefined && durationMs > 0;
  if (!added.has(name)) added.set(name, []);
  added.get(name).push(toxic);
  return toxic;
}

// Removes one toxic the catalog added; a toxic with a duration may have removed itself already (404).
export async function removeToxic(name, toxic) {
  try {
    await toxic.remove();
  } catch (err) {
    if (!(toxic.removesItself && /status code 404/.test(err.message))) throw err;
  }
  added.set(name, (added.get(name) ?? []).filter((t) => t !== toxic));
}

// Removes every toxic the catalog added to the proxy and enables it again.
export async function heal(name) {
  for (const toxic of [...(added.get(name) ?? [])]) await removeToxic(name, toxic);
  added.delete(name);
  await setEnabled(name, true);
}

// The toxics a proxy has now, as faultproxy lists them.
export async function listToxics(name) {
  return (await toxiproxy.getApi().get(`${stack.faultproxyUrl}/proxies/${name}/toxics`)).data ?? [];
}

// Closes every connection the proxy has (Toxiproxy: disabling a proxy closes them), then takes new
// ones again: clients must reconnect, through whatever toxics the proxy has.
export async function dropConnections(name) {
  await setEnabled(name, false);
  await setEnabled(name, true);
}

// faultproxy's count of the commands, statements or requests a protocol toxic acted on
// (faultproxy_toxic_actions_total), summed over the proxy's toxics of that type.
export async function toxicActions(name, type) {
  const res = await fetch(`${stack.faultproxyUrl}/metrics`);
  const text = await res.text();
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith('faultproxy_toxic_actions_total{')) continue;
    if (!line.includes(`proxy="${name}"`) || !line.includes(`type="${type}"`)) continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

// Creates (or re-creates) a proxy on an ephemeral port, as Toxiproxy's clients do in tests.
export async function createProxy(name, upstream) {
  const existing = await toxiproxy.getAll();
  if (existing[name]) await existing[name].remove();
  const p = await toxiproxy.createProxy({ name, listen: '127.0.0.1:0', upstream });
  if (!/^127\.0\.0\.1:[1-9]\d*$/.test(p.listen)) throw new Error(`faultproxy echoed listen '${p.listen}' for a proxy created on 127.0.0.1:0 (expected the bound port)`);
  return p;
}

export async function removeProxy(name) {
  added.delete(name);
  const existing = await toxiproxy.getAll();
  if (existing[name]) await existing[name].remove();
}

// POST /reset: every proxy enabled, every toxic gone (live connections survive). Returns the proxies
// that had a fault since the last reset.
export async function resetAll() {
  added.clear();
  await toxiproxy.reset();
  const faulted = [...touched];
  touched.clear();
  return faulted;
}

export async function describeProxies() {
  try {
    const res = await toxiproxy.getApi().get(`${stack.faultproxyUrl}/proxies`);
    return Object.values(res.data ?? {})
      .map((p) => `${p.name}: ${p.enabled ? 'enabled' : 'DISABLED'}, toxics ${JSON.stringify(p.toxics ?? [])}`)
      .join('\n');
  } catch (err) {
    return `faultproxy unreachable: ${err.message}`;
  }
}
