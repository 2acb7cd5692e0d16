// Where the stack under test lives. `./dev test` exports these for the stack it started; running
// cucumber-js by hand against `./dev up`'s stack works with the defaults (stack/ports, base 17000).
const base = 17000;
export const stack = {
  userServiceUrl: process.env.USER_SERVICE_URL ?? `http://127.0.0.1:${base + 80}`,
  faultproxyUrl: process.env.FAULTPROXY_URL ?? `http://127.0.0.1:${base + 474}`,
  redisMasterPort: Number(process.env.REDIS_MASTER_PORT ?? base + 379),
  redisReplicaPort: Number(process.env.REDIS_REPLICA_PORT ?? base + 380),
  mariadbPort: Number(process.env.MARIADB_PORT ?? base + 306),
};
