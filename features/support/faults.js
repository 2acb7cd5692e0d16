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

export async function setEnabled(name, enabled) {
  touched.add(name);
  const p = await proxy(name);
  const updated = await p.update({ ...p.toJson(), enabled });
  if (updated.enabled !== enabled) {
    throw new Error(`faultproxy: proxy '${name}' answered enabled=${updated.enabled} after being set to ${enabled}`);
  }
}

// Adds a toxic (Toxiproxy semantics: `stream` defaults to downstream, toxicity to 1) and checks that
// faultproxy echoes it back as Toxiproxy would.
export async function addToxic(name, { type, stream = 'downstream', attributes, toxicity = 1 }) {
  touched.add(name);
  const p = await proxy(name);
  const toxicName = `${type}_${stream}_${(added.get(name)?.length ?? 0) + 1}`;
  let toxic;
  try {
    toxic = await p.addToxic({ name: toxicName, type, stream, toxicity, attributes });
  } catch (err) {
    throw new Error(`faultproxy: adding a ${type} toxic (${stream}, ${JSON.stringify(attributes)}) to '${name}' failed: ${err.message}`);
  }
  for (const [k, v] of Object.entries(attributes)) {
    if (toxic.attributes?.[k] !== v) {
      throw new Error(`faultproxy echoed ${type}.${k}=${toxic.attributes?.[k]} for '${name}', expected ${v}`);
    }
  }
  if (!added.has(name)) added.set(name, []);
  added.get(name).push(toxic);
  return toxic;
}

// Removes every toxic the catalog added to the proxy and enables it again.
export async function heal(name) {
  for (const toxic of added.get(name) ?? []) await toxic.remove();
  added.delete(name);
  await setEnabled(name, true);
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
