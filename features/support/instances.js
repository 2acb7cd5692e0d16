// Extra user-service instances that a scenario starts itself (the start-up scenarios: the shared
// instance of the stack is already running). Each gets the stack's configuration with its own HTTP
// port and its own database, so it creates its schema itself; it is stopped, by its pid, after the
// scenario.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';

import { stack } from './stack.js';
import { freePort } from './ports.js';

const running = new Set();

function setPath(obj, dotted, value) {
  const parts = dotted.split('.');
  let o = obj;
  for (const p of parts.slice(0, -1)) {
    if (typeof o[p] !== 'object' || o[p] === null) throw new Error(`the stack's user-service configuration has no '${dotted}'`);
    o = o[p];
  }
  if (!(parts.at(-1) in o)) throw new Error(`the stack's user-service configuration has no '${dotted}'`);
  o[parts.at(-1)] = value;
}

// Starts user-service with the stack's configuration, changed by `overrides` ({ 'a.b': value });
// returns { url, adminUrl, database, pid, log }.
export async function startInstance(name, overrides = {}) {
  if (!stack.stackDir || !stack.userServiceBin) {
    throw new Error('STACK_DIR and USER_SERVICE_BIN must name the stack and the user-service binary (./dev test exports them)');
  }
  const config = JSON.parse(fs.readFileSync(path.join(stack.stackDir, 'user-service.json'), 'utf8'));
  const port = await freePort();
  const adminPort = await freePort();
  const suffix = `${process.pid}_${Date.now().toString(36)}`;
  const database = `users_${name.replace(/\W/g, '_')}_${suffix}`;
  setPath(config, 'listen', `127.0.0.1:${port}`);
  setPath(config, 'admin.listen', `127.0.0.1:${adminPort}`);
  setPath(config, 'mysql.database', database);
  for (const [k, v] of Object.entries(overrides)) setPath(config, k, v);
  const dir = path.join(stack.stackDir, 'instances');
  fs.mkdirSync(dir, { recursive: true });
  const configFile = path.join(dir, `${name}-${suffix}.json`);
  fs.writeFileSync(configFile, JSON.stringify(config, null, 2));
  const log = path.join(dir, `${name}-${suffix}.log`);
  const out = fs.openSync(log, 'a');
  // user-service refuses unknown USER_SERVICE_* variables, and the catalog's own (USER_SERVICE_URL,
  // USER_SERVICE_BIN) are not its settings.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('USER_SERVICE_')));
  const child = spawn(stack.userServiceBin, ['--config', configFile], { stdio: ['ignore', out, out], env });
  fs.closeSync(out);
  const instance = { url: `http://127.0.0.1:${port}`, adminUrl: `http://127.0.0.1:${adminPort}`, database, child, pid: child.pid, log, exited: null };
  child.on('exit', (code, signal) => {
    instance.exited = { code, signal };
  });
  running.add(instance);
  return instance;
}

export async function stopInstance(instance) {
  running.delete(instance);
  if (instance.exited) return instance.exited;
  const done = once(instance.child, 'exit');
  instance.child.kill('SIGTERM');
  const timer = setTimeout(() => instance.child.kill('SIGKILL'), 5000);
  await done;
  clearTimeout(timer);
  return instance.exited;
}

export async function stopInstances() {
  for (const i of [...running]) await stopInstance(i);
}
