'use strict';
// ioredis 6.x against hashd: connect variants (its INFO ready check included), every hash and
// field-TTL command through its generic variadic methods, pipelines, MULTI/EXEC, WATCH, a 1 MiB
// value, a 1,000-command pipeline and reconnect after a restart.   node ioredis.js --resp 3|2

const Redis = require('ioredis');
const { version } = require('ioredis/package.json');
const { withTimeout, assert, env, Suite, poll, near, rejects, restartServer, oneMiB, argResp, nowS } = require('./harness');

const RESP = argResp();
const suite = new Suite(`ioredis${version}[resp${RESP}]`);
const P = `compat:io${RESP}:`;
const opened = [];

async function client(opts = {}) {
  const c = new Redis({ host: env.host, port: env.port, protocol: RESP, lazyConnect: true, ...opts });
  c.on('error', () => {}); // reconnects are expected (restart test); failures surface on commands
  opened.push(c);
  await withTimeout(c.connect(), 10000, 'connect');
  return c;
}
const clientInfo = async (c) =>
  Object.fromEntries(
    String(await c.client('INFO'))
      .trim()
      .split(' ')
      .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
  );
// [[err, reply], ...] from pipeline()/multi() → replies, failing on the first error.
const replies = (rows) => rows.map(([err, v]) => {
  if (err) throw err;
  return v;
});

async function main() {
  let r;
  await suite.check('connect/plain+ready-check', async () => {
    r = await client(); // enableReadyCheck (default) sends INFO and waits for loading:0
    assert.equal(r.status, 'ready');
    assert.equal(await r.ping(), 'PONG');
    assert.equal(await r.echo('hi there'), 'hi there');
  });
  if (!r) return;
  await suite.check('connect/protocol-in-use', async () => {
    assert.equal((await clientInfo(r)).resp, String(RESP));
  });
  await suite.check('connect/lib-name', async () => {
    assert.equal((await clientInfo(r))['lib-name'], 'ioredis');
  });
  await suite.check('connect/password', async () => {
    const c = await client({ port: env.authPort, password: env.password });
    assert.equal(await c.ping(), 'PONG');
    await c.del(P + 'auth');
    assert.equal(await c.hset(P + 'auth', 'f', 'v'), 1);
    c.disconnect();
  });
  await suite.check('connect/username+password', async () => {
    const c = await client({ port: env.authPort, username: 'default', password: env.password });
    assert.equal(await c.ping(), 'PONG');
    c.disconnect();
  });
  await suite.check('connect/url-password-db', async () => {
    const c = new Redis(`redis://default:${env.password}@${env.host}:${env.authPort}/5`, { protocol: RESP });
    opened.push(c);
    c.on('error', () => {});
    await c.hset(P + 'url', 'f', 'v');
    const d = await client({ port: env.authPort, password: env.password, db: 5 });
    assert.equal(await d.hget(P + 'url', 'f'), 'v');
    c.disconnect();
    d.disconnect();
  });
  await suite.check('connect/wrong-password', async () => {
    const c = new Redis({
      host: env.host, port: env.authPort, protocol: RESP, password: 'not-the-password',
      lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0,
    });
    c.on('error', () => {});
    await rejects(c.connect().then(() => c.ping()), 'connect with a wrong password');
    c.disconnect();
  });
  await suite.check('connect/missing-password', async () => {
    const c = new Redis({
      host: env.host, port: env.authPort, protocol: RESP,
      lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0,
    });
    const seen = [];
    c.on('error', (err) => seen.push(String(err.message)));
    const e = await rejects(c.connect().then(() => c.ping()), 'a command without the password');
    // The NOAUTH reply to the INFO ready check closes the connection; it shows as an error event.
    seen.push(String(e.message));
    assert.ok(seen.some((m) => /NOAUTH|Authentication required|authenticated/.test(m)), JSON.stringify(seen));
    c.disconnect();
  });
  await suite.check('connect/db-index', async () => {
    const c = await client({ db: 3 });
    await c.del(P + 'db');
    assert.equal(await c.hset(P + 'db', 'f', 'in-db-3'), 1);
    assert.equal(await r.hget(P + 'db', 'f'), null);
    c.disconnect();
  });
  await suite.check('connect/client-name', async () => {
    const c = await client({ connectionName: 'compat-ioredis' });
    assert.equal(await c.client('GETNAME'), 'compat-ioredis');
    assert.equal(await c.client('SETNAME', 'renamed'), 'OK');
    assert.equal(await c.client('GETNAME'), 'renamed');
    c.disconnect();
  });

  // ---- classic hash commands ----------------------------------------------------------------
  const H = P + 'h';
  const want = {
    model: 'Deimos', brand: 'Ergonom', type: 'Enduro bikes', price: '4972',
    year: '2024', wheels: '2', color: 'blue', gears: '11',
  };
  await suite.check('hash/hset', async () => {
    await r.del(H);
    assert.equal(await r.hset(H, 'model', 'Deimos'), 1);
    assert.equal(await r.hset(H, { brand: 'Ergonom', type: 'Enduro bikes', price: 4972 }), 3);
    assert.equal(await r.hset(H, 'year', '2024', 'model', 'Deimos'), 1);
    assert.equal(await r.hset(H, new Map([['wheels', '2']])), 1);
  });
  await suite.check('hash/hsetnx', async () => {
    assert.equal(await r.hsetnx(H, 'model', 'x'), 0);
    assert.equal(await r.hsetnx(H, 'color', 'red'), 1);
  });
  await suite.check('hash/hmset', async () => {
    assert.equal(await r.hmset(H, { gears: '11', color: 'blue' }), 'OK');
  });
  await suite.check('hash/hget+hmget', async () => {
    assert.equal(await r.hget(H, 'model'), 'Deimos');
    assert.equal(await r.hget(H, 'nope'), null);
    assert.deepEqual(await r.hmget(H, 'model', 'price', 'nope'), ['Deimos', '4972', null]);
  });
  await suite.check('hash/hgetall+hkeys+hvals', async () => {
    assert.deepEqual({ ...(await r.hgetall(H)) }, want);
    assert.deepEqual(await r.hkeys(H), Object.keys(want));
    assert.deepEqual(await r.hvals(H), Object.values(want));
    assert.deepEqual({ ...(await r.hgetall(P + 'nokey')) }, {});
  });
  await suite.check('hash/hlen+hexists+hstrlen', async () => {
    assert.equal(await r.hlen(H), 8);
    assert.equal(await r.hexists(H, 'model'), 1);
    assert.equal(await r.hexists(H, 'nope'), 0);
    assert.equal(await r.hstrlen(H, 'type'), 'Enduro bikes'.length);
  });
  await suite.check('hash/hincrby', async () => {
    assert.equal(await r.hincrby(H, 'price', 100), 5072);
    assert.equal(await r.hincrby(H, 'price', -100), 4972);
    const e = await rejects(r.hincrby(H, 'model', 1), 'HINCRBY on text');
    assert.equal(e.message, 'ERR hash value is not an integer');
  });
  await suite.check('hash/hincrbyfloat', async () => {
    assert.equal(await r.hincrbyfloat(H, 'weight', 10.5), '10.5');
    assert.equal(await r.hincrbyfloat(H, 'weight', 0.1), '10.6');
  });
  await suite.check('hash/hdel', async () => {
    assert.equal(await r.hdel(H, 'weight', 'nope'), 1);
  });
  await suite.check('hash/hrandfield', async () => {
    assert.ok(Object.keys(want).includes(await r.hrandfield(H)));
    const three = await r.hrandfield(H, 3);
    assert.equal(new Set(three).size, 3);
    assert.equal((await r.hrandfield(H, -20)).length, 20);
    let wv = await r.hrandfield(H, 2, 'WITHVALUES');
    if (Array.isArray(wv[0])) wv = wv.flat(); // RESP3 sends field/value pairs
    assert.equal(wv.length, 4);
    assert.equal(wv[1], want[wv[0]]);
  });
  await suite.check('hash/hscan', async () => {
    const big = P + 'scan';
    await r.del(big);
    const obj = {};
    for (let i = 0; i < 300; i++) obj[`f${i}`] = String(i);
    await r.hset(big, obj);
    const seen = {};
    let cursor = '0';
    let rounds = 0;
    do {
      const [next, flat] = await r.hscan(big, cursor, 'COUNT', 50);
      cursor = next;
      for (let i = 0; i < flat.length; i += 2) seen[flat[i]] = flat[i + 1];
      if (++rounds > 1000) throw new Error('HSCAN never returned cursor 0');
    } while (cursor !== '0');
    assert.deepEqual(seen, obj);
    const streamed = {};
    await new Promise((resolve, reject) => {
      const s = r.hscanStream(big, { match: 'f1?', count: 100 });
      s.on('data', (flat) => { for (let i = 0; i < flat.length; i += 2) streamed[flat[i]] = flat[i + 1]; });
      s.on('end', resolve);
      s.on('error', reject);
    });
    assert.equal(Object.keys(streamed).length, 10);
    const [, fields] = await r.hscan(H, '0', 'NOVALUES');
    assert.deepEqual([...fields].sort(), Object.keys(want).sort());
  });

  // ---- field expiration (generic variadic methods, sent as typed) ---------------------------
  const E = P + 'hfe';
  const freshE = async () => {
    await r.del(E);
    await r.hset(E, { a: '1', b: '2', c: '3', d: '4' });
  };
  await suite.check('hfe/hexpire+httl', async () => {
    await freshE();
    assert.deepEqual(await r.hexpire(E, 100, 'FIELDS', 3, 'a', 'b', 'nope'), [1, 1, -2]);
    assert.deepEqual(await r.hexpire(E, 200, 'NX', 'FIELDS', 1, 'a'), [0]);
    assert.deepEqual(await r.hexpire(E, 50, 'lt', 'fields', 1, 'a'), [1]);
    assert.deepEqual(await r.httl(E, 'FIELDS', 4, 'a', 'b', 'c', 'nope'), [50, 100, -1, -2]);
  });
  await suite.check('hfe/hpexpire+hpttl', async () => {
    await freshE();
    assert.deepEqual(await r.hpexpire(E, 100000, 'FIELDS', 1, 'a'), [1]);
    near((await r.hpttl(E, 'FIELDS', 1, 'a'))[0], 100000, 2000);
  });
  await suite.check('hfe/hexpireat+hexpiretime', async () => {
    await freshE();
    const at = nowS() + 1000;
    assert.deepEqual(await r.hexpireat(E, at, 'FIELDS', 1, 'a'), [1]);
    assert.deepEqual(await r.hexpiretime(E, 'FIELDS', 3, 'a', 'b', 'nope'), [at, -1, -2]);
  });
  await suite.check('hfe/hpexpireat+hpexpiretime', async () => {
    await freshE();
    const atMs = Date.now() + 500000;
    assert.deepEqual(await r.hpexpireat(E, atMs, 'FIELDS', 2, 'a', 'b'), [1, 1]);
    assert.deepEqual(await r.hpexpiretime(E, 'FIELDS', 2, 'a', 'b'), [atMs, atMs]);
  });
  await suite.check('hfe/hpersist', async () => {
    await freshE();
    await r.hexpire(E, 100, 'FIELDS', 1, 'a');
    assert.deepEqual(await r.hpersist(E, 'FIELDS', 3, 'a', 'b', 'nope'), [1, -1, -2]);
  });
  await suite.check('hfe/fields-really-expire', async () => {
    await freshE();
    await r.hpexpire(E, 50, 'FIELDS', 2, 'a', 'b');
    await poll(async () => (await r.hmget(E, 'a', 'b')).every((v) => v === null), 'a and b expired');
    assert.deepEqual({ ...(await r.hgetall(E)) }, { c: '3', d: '4' });
  });
  await suite.check('hfe/hgetex', async () => {
    await freshE();
    assert.deepEqual(await r.hgetex(E, 'PX', 5000, 'FIELDS', 3, 'a', 'b', 'nope'), ['1', '2', null]);
    near((await r.hpttl(E, 'FIELDS', 1, 'a'))[0], 5000, 1000);
    assert.deepEqual(await r.hgetex(E, 'PERSIST', 'FIELDS', 1, 'a'), ['1']);
    assert.deepEqual(await r.httl(E, 'FIELDS', 1, 'a'), [-1]);
  });
  await suite.check('hfe/hsetex', async () => {
    await r.del(E);
    assert.equal(await r.hsetex(E, 'EX', 50, 'FIELDS', 1, 'a', '1'), 1);
    // user-ordered options: FNX before the expiry, as ioredis users write them
    assert.equal(await r.hsetex(E, 'FNX', 'EX', 60, 'FIELDS', 2, 'a', 'x', 'b', '2'), 0);
    assert.equal(await r.hsetex(E, 'PX', 70000, 'FNX', 'FIELDS', 1, 'b', '2'), 1);
    assert.equal(await r.hsetex(E, 'FXX', 'KEEPTTL', 'FIELDS', 1, 'a', 'A'), 1);
    assert.deepEqual(await r.httl(E, 'FIELDS', 1, 'a'), [50]);
  });
  await suite.check('hfe/hgetdel', async () => {
    await freshE();
    assert.deepEqual(await r.hgetdel(E, 'FIELDS', 3, 'a', 'nope', 'b'), ['1', null, '2']);
    assert.deepEqual(await r.hgetdel(E, 'FIELDS', 2, 'c', 'd'), ['3', '4']);
    assert.equal(await r.exists(E), 0);
  });

  // ---- pipelines, transactions, WATCH -------------------------------------------------------
  const T = P + 'tx';
  await suite.check('pipeline/plain', async () => {
    await r.del(T);
    const res = replies(await r.pipeline().hset(T, 'a', '1').hincrby(T, 'a', 5).hget(T, 'a')
      .hexpire(T, 100, 'FIELDS', 1, 'a').httl(T, 'FIELDS', 1, 'a').exec());
    assert.deepEqual(res, [1, 6, '6', [1], [100]]);
  });
  await suite.check('tx/multi-exec', async () => {
    await r.del(T);
    const res = replies(await r.multi().hset(T, { a: '1', b: '2' }).hincrby(T, 'a', 10).hgetall(T).exec());
    assert.equal(res[0], 2);
    assert.equal(res[1], 11);
    assert.deepEqual({ ...res[2] }, { a: '11', b: '2' });
  });
  await suite.check('tx/runtime-error', async () => {
    await r.del(T);
    const rows = await r.multi().hset(T, 's', 'text').hincrby(T, 's', 1).hset(T, 't', '2').exec();
    assert.equal(rows[0][1], 1);
    assert.equal(rows[1][0] && rows[1][0].message, 'ERR hash value is not an integer');
    assert.equal(rows[2][1], 1);
  });
  await suite.check('tx/watch-conflict', async () => {
    await r.del(T);
    await r.hset(T, 'n', '1');
    const w = await client();
    const other = await client();
    assert.equal(await w.watch(T), 'OK');
    await other.hset(T, 'n', '100');
    assert.equal(await w.multi().hset(T, 'n', '2').exec(), null, 'EXEC → null after a conflict');
    assert.equal(await r.hget(T, 'n'), '100');
    w.disconnect();
    other.disconnect();
  });

  // ---- big values, big pipelines ------------------------------------------------------------
  const B = P + 'big';
  await suite.check('big/1mib-value', async () => {
    await r.del(B);
    const value = oneMiB();
    assert.equal(await r.hset(B, 'blob', value), 1);
    const got = await r.hgetBuffer(B, 'blob');
    assert.ok(got.equals(value), '1 MiB binary value round-trips');
    assert.equal(await r.hstrlen(B, 'blob'), 1024 * 1024);
  });
  await suite.check('big/1000-command-pipeline', async () => {
    await r.del(B);
    const p = r.pipeline();
    for (let i = 0; i < 1000; i++) p.hset(B, `f${i}`, String(i));
    assert.deepEqual(replies(await p.exec()), new Array(1000).fill(1));
    const g = r.pipeline();
    for (let i = 0; i < 1000; i++) g.hget(B, `f${i}`);
    assert.deepEqual(replies(await g.exec()), Array.from({ length: 1000 }, (_, i) => String(i)));
  });
  await suite.check('big/1000-command-transaction', async () => {
    const m = r.multi();
    for (let i = 0; i < 1000; i++) m.hincrby(B, `f${i}`, 1);
    assert.deepEqual(replies(await m.exec()), Array.from({ length: 1000 }, (_, i) => i + 1));
  });

  // ---- reconnect ----------------------------------------------------------------------------
  await suite.check('reconnect/after-restart', async () => {
    const R = P + 'restart';
    assert.equal(await r.hset(R, 'f', 'before'), 1);
    restartServer('plain');
    await poll(async () => (await r.ping().catch(() => null)) === 'PONG', 'PING after restart', 10000);
    assert.equal(await r.hget(R, 'f'), null, 'a restarted in-memory server is empty');
    assert.equal(await r.hset(R, 'f', 'after'), 1);
  });
}

main()
  .catch((e) => {
    console.log(`FAIL ${suite.name} main: ${e.stack}`);
    suite.failed++;
  })
  .finally(() => {
    for (const c of opened) c.disconnect();
    suite.finish();
  });
