const mysql = require('mysql2/promise');
const TRIG = "CREATE TRIGGER u.ti AFTER INSERT ON u.t FOR EACH ROW IF UNIX_TIMESTAMP(SYSDATE(6)) * 1000000 > @f THEN SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'x'; END IF; CREATE TRIGGER u.tu AFTER UPDATE ON u.t FOR EACH ROW IF UNIX_TIMESTAMP(SYSDATE(6)) * 1000000 > @f THEN SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'x'; END IF";
const OLD = "INSERT INTO u.t (id, name, v) SELECT ?, ?, LAST_INSERT_ID(NEXT VALUE FOR u.s) FROM DUAL WHERE UNIX_TIMESTAMP(NOW(6)) * 1000000 <= ? ON DUPLICATE KEY UPDATE name = VALUES(name), v = LAST_INSERT_ID(NEXT VALUE FOR u.s)";
const NEW = "INSERT INTO u.t (id, name, v) SELECT ?, ?, (@p := NEXT VALUE FOR u.s) FROM DUAL WHERE UNIX_TIMESTAMP(NOW(6)) * 1000000 <= (@f := ?) ON DUPLICATE KEY UPDATE name = VALUES(name), v = NEXT VALUE FOR u.s RETURNING v, v = @p";
async function run(label, sql, trig) {
  const a = await mysql.createConnection({host: '127.0.0.1', port: 3399, user: 'root', multipleStatements: true});
  await a.query("DROP DATABASE IF EXISTS u; CREATE DATABASE u; CREATE SEQUENCE u.s; CREATE TABLE u.t (id VARCHAR(20) PRIMARY KEY, name VARCHAR(50), v BIGINT UNSIGNED) ENGINE=InnoDB");
  if (trig) await a.query(TRIG);
  const conns = await Promise.all([...Array(8)].map(() => mysql.createConnection({host: '127.0.0.1', port: 3399, user: 'root'})));
  const far = Date.now() * 1000 + 1e10; let n = 0; const until = Date.now() + 4000;
  await Promise.all(conns.map(async (c, k) => { while (Date.now() < until) { await c.execute(sql, ['p-' + ((n * 7 + k) % 1000), 'x' + n, far]); n++; } }));
  console.log(label, (n / 4).toFixed(0), '/s');
  for (const c of conns) await c.end(); await a.end();
}
(async () => {
  for (let i = 0; i < 2; i++) {
    await run('old sql, no triggers ', OLD, false);
    await run('new sql, no triggers ', NEW, false);
    await run('new sql, triggers    ', NEW, true);
  }
})().catch(e => { console.error(e.message); process.exit(1); });
