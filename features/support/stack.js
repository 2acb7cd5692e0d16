// Where the stack under test lives. `./dev test` exports these for the stack it started; running
// cucumber-js by hand against `./dev up`'s stack works with the defaults (stack/ports, base 17000).
const base = 17000;
export const stack = {
  userServiceUrl: process.env.USER_SERVICE_URL ?? `http://127.0.0.1:${base + 80}`,
  // The service's admin listener: GET /config and /metrics (not served on the public port).
  adminUrl: process.env.USER_SERVICE_ADMIN_URL ?? `http://127.0.0.1:${base + 90}`,
  faultproxyUrl: process.env.FAULTPROXY_URL ?? `http://127.0.0.1:${base + 474}`,
  redisMasterPort: Number(process.env.REDIS_MASTER_PORT ?? base + 379),
  redisReplicaPort: Number(process.env.REDIS_REPLICA_PORT ?? base + 380),
  mariadbPort: Number(process.env.MARIADB_PORT ?? base + 306),
  // Only needed by the start-up scenarios, which start a second user-service of their own.
  stackDir: process.env.STACK_DIR ?? null,
  userServiceBin: process.env.USER_SERVICE_BIN ?? null,
};

// The proxies of stack/proxies.json, in the order the catalog lists them. The article calls the
// MariaDB proxy 'MySQL' and the replica 'redis-slave'; steps accept those spellings too.
export const PROXIES = ['mysql', 'redis-master', 'redis-replica'];
// A proxy of the catalog's own (to the Redis master, unused by the service), created for the
// scenarios that check faultproxy itself, so that their toxics never touch the service.
export const SCRATCH_PROXY = 'catalog-scratch';
const ALIASES = {
  mysql: 'mysql',
  mariadb: 'mysql',
  'redis-master': 'redis-master',
  'redis-replica': 'redis-replica',
  'redis-slave': 'redis-replica',
  scratch: SCRATCH_PROXY,
};

export function proxyName(spelled) {
  const name = ALIASES[String(spelled).toLowerCase()];
  if (!name) throw new Error(`unknown dependency '${spelled}': the stack's proxies are ${PROXIES.join(', ')}`);
  return name;
}
