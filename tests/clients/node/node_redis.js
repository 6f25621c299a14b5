'use strict';
// node-redis 6.x (npm `redis`) against hashd: connect variants, every hash and field-TTL
// method, pipelines, MULTI/EXEC, WATCH, a 1 MiB value, a 1,000-command pipeline and
// reconnect after a restart.   node node_redis.js --resp 3|2

const { createClient, WatchError, RESP_TYPES } = require('redis');
const { version } = require('redis/package.json');
const { withTimeout, assert, env, Suite, poll, near, rejects, restartServer, oneMiB, argResp, nowS } = require('./harness');

const RESP = argResp();
const suite = new Suite(`node-redis${version}[resp${RESP}]`);
const P = `compat:nr${RESP}:`;
const opened = [];

async function client(opts = {}) {
  const { port = env.port, ...rest } = opts;
  const c = createClient({ RESP, socket: { host: env.host, port, connectTimeout: 5000 }, ...rest });
  c.on('error', () => {}); // reconnects are expected (restart test); failures surface on commands
  opened.push(c);
  // node-redis retries a failed handshake forever; give up after a while instead.
  await withTimeout(c.connect(), 10000, 'connect');
  return c;
}
const plain = (o) => Object.fromEntries(Object.entries(o));
const clientInfo = async (c) =>
  Object.fromEntries(
    String(await c.sendCommand(['CLIENT', 'INFO']))
      .trim()
      .split(' ')
      .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
  );

async function main() {
  let r;
  await suite.check('connect/plain', async () => {
    r = await client();
    assert.equal(await r.ping(), 'PONG');
    assert.equal(await r.echo('hi there'), 'hi there');
  });
  if (!r) return;
  await suite.check('connect/protocol-in-use', async () => {
    assert.equal((await clientInfo(r)).resp, String(RESP));
  });
  await suite.check('connect/lib-name', async () => {
    assert.equal((await clientInfo(r))['lib-name'], 'node-redis');
  });
  await suite.check('connect/password', async () => {
    const c = await client({ port: env.authPort, password: env.password });
    assert.equal(await c.ping(), 'PONG');
    await c.del(P + 'auth');
    assert.equal(await c.hSet(P + 'auth', 'f', 'v'), 1);
    await c.close();
  });
  await suite.check('connect/username+password', async () => {
    const c = await client({ port: env.authPort, username: 'default', password: env.password });
    assert.equal(await c.ping(), 'PONG');
    await c.close();
  });
  await suite.check('connect/url-password-db', async () => {
    const c = await client({ url: `redis://default:${env.password}@${env.host}:${env.authPort}/5` });
    await c.hSet(P + 'url', 'f', 'v');
    const d = await client({ port: env.authPort, password: env.password, database: 5 });
    assert.equal(await d.hGet(P + 'url', 'f'), 'v');
    await c.close();
    await d.close();
  });
  await suite.check('connect/wrong-password', async () => {
    const c = createClient({
      RESP,
      password: 'not-the-password',
      socket: { host: env.host, port: env.authPort, reconnectStrategy: false },
    });
    c.on('error', () => {});
    await rejects(c.connect(), 'connect with a wrong password');
    try { c.destroy(); } catch { /* already closed */ }
  });
  await suite.check('connect/missing-password', async () => {
    const c = createClient({ RESP, socket: { host: env.host, port: env.authPort, reconnectStrategy: false } });
    c.on('error', () => {});
    // RESP3: HELLO 3 fails with NOAUTH; RESP2: the connect works and the first command fails.
    const e = await rejects(
      c.connect().then(() => c.ping()),
      'a command without the password',
    );
    assert.match(String(e.message), /NOAUTH|Authentication required|authenticated/);
    try { c.destroy(); } catch { /* already closed */ }
  });
  await suite.check('connect/db-index', async () => {
    const c = await client({ database: 3 });
    await c.del(P + 'db');
    assert.equal(await c.hSet(P + 'db', 'f', 'in-db-3'), 1);
    assert.equal(await r.hGet(P + 'db', 'f'), null, 'not visible in db 0');
    await c.close();
  });
  await suite.check('connect/client-name', async () => {
    const c = await client({ name: 'compat-node' });
    assert.equal(await c.clientGetName(), 'compat-node');
    assert.equal(await c.clientSetName('renamed'), 'OK');
    assert.equal(await c.clientGetName(), 'renamed');
    await c.close();
  });

  // ---- classic hash commands ----------------------------------------------------------------
  const H = P + 'h';
  await suite.check('hash/hset', async () => {
    await r.del(H);
    assert.equal(await r.hSet(H, 'model', 'Deimos'), 1);
    assert.equal(await r.hSet(H, { brand: 'Ergonom', type: 'Enduro bikes', price: 4972 }), 3);
    assert.equal(await r.hSet(H, new Map([['year', '2024'], ['model', 'Deimos']])), 1);
    assert.equal(await r.hSet(H, [['wheels', '2']]), 1);
  });
  await suite.check('hash/hsetnx', async () => {
    assert.equal(Number(await r.hSetNX(H, 'model', 'x')), 0);
    assert.equal(Number(await r.hSetNX(H, 'color', 'red')), 1);
  });
  await suite.check('hash/hmset(sendCommand)', async () => {
    assert.equal(await r.sendCommand(['HMSET', H, 'gears', '11', 'color', 'blue']), 'OK');
  });
  await suite.check('hash/hget+hmget', async () => {
    assert.equal(await r.hGet(H, 'model'), 'Deimos');
    assert.equal(await r.hGet(H, 'nope'), null);
    assert.deepEqual(await r.hmGet(H, ['model', 'price', 'nope']), ['Deimos', '4972', null]);
  });
  const want = {
    model: 'Deimos', brand: 'Ergonom', type: 'Enduro bikes', price: '4972',
    year: '2024', wheels: '2', color: 'blue', gears: '11',
  };
  await suite.check('hash/hgetall+hkeys+hvals', async () => {
    assert.deepEqual(plain(await r.hGetAll(H)), want);
    assert.deepEqual(await r.hKeys(H), Object.keys(want));
    assert.deepEqual(await r.hVals(H), Object.values(want));
    assert.deepEqual(plain(await r.hGetAll(P + 'nokey')), {});
  });
  await suite.check('hash/hlen+hexists+hstrlen', async () => {
    assert.equal(await r.hLen(H), 8);
    assert.equal(Number(await r.hExists(H, 'model')), 1);
    assert.equal(Number(await r.hExists(H, 'nope')), 0);
    assert.equal(await r.hStrLen(H, 'type'), 'Enduro bikes'.length);
  });
  await suite.check('hash/hincrby', async () => {
    assert.equal(await r.hIncrBy(H, 'price', 100), 5072);
    assert.equal(await r.hIncrBy(H, 'price', -100), 4972);
    const e = await rejects(r.hIncrBy(H, 'model', 1), 'HINCRBY on text');
    assert.equal(e.message, 'ERR hash value is not an integer');
  });
  await suite.check('hash/hincrbyfloat', async () => {
    assert.equal(await r.hIncrByFloat(H, 'weight', 10.5), '10.5');
    assert.equal(await r.hIncrByFloat(H, 'weight', 0.1), '10.6');
  });
  await suite.check('hash/hdel', async () => {
    assert.equal(await r.hDel(H, ['weight', 'nope']), 1);
    assert.equal(await r.hDel(H, 'nope'), 0);
  });
  await suite.check('hash/hrandfield', async () => {
    const fields = new Set(Object.keys(want));
    assert.ok(fields.has(await r.hRandField(H)));
    const three = await r.hRandFieldCount(H, 3);
    assert.equal(new Set(three).size, 3);
    assert.equal((await r.hRandFieldCount(H, -20)).length, 20);
    const wv = await r.hRandFieldCountWithValues(H, 2);
    assert.equal(wv.length, 2);
    for (const { field, value } of wv) assert.equal(value, want[field]);
    assert.equal(await r.hRandField(P + 'nokey'), null);
  });
  await suite.check('hash/hscan', async () => {
    const big = P + 'scan';
    await r.del(big);
    const obj = {};
    for (let i = 0; i < 300; i++) obj[`f${i}`] = String(i);
    await r.hSet(big, obj);
    const seen = {};
    let cursor = '0';
    let rounds = 0;
    do {
      const res = await r.hScan(big, cursor, { COUNT: 50 });
      cursor = String(res.cursor);
      for (const { field, value } of res.entries) seen[field] = value;
      if (++rounds > 1000) throw new Error('HSCAN never returned cursor 0');
    } while (cursor !== '0');
    assert.deepEqual(seen, obj);
    const m = await r.hScan(big, '0', { MATCH: 'f1?', COUNT: 1000 });
    assert.equal(m.entries.length, 10);
    const nv = await r.hScanNoValues(H, '0');
    assert.deepEqual([...nv.fields].sort(), Object.keys(want).sort());
  });

  // ---- field expiration ---------------------------------------------------------------------
  const E = P + 'hfe';
  const freshE = async () => {
    await r.del(E);
    await r.hSet(E, { a: '1', b: '2', c: '3', d: '4' });
  };
  await suite.check('hfe/hexpire+httl', async () => {
    await freshE();
    assert.deepEqual(await r.hExpire(E, ['a', 'b', 'nope'], 100), [1, 1, -2]);
    assert.deepEqual(await r.hExpire(E, 'a', 200, 'NX'), [0]);
    assert.deepEqual(await r.hExpire(E, 'a', 200, 'GT'), [1]);
    assert.deepEqual(await r.hExpire(E, 'a', 50, 'LT'), [1]);
    assert.deepEqual(await r.hExpire(E, 'c', 50, 'XX'), [0]);
    assert.deepEqual(await r.hTTL(E, ['a', 'b', 'c', 'nope']), [50, 100, -1, -2]);
  });
  await suite.check('hfe/hpexpire+hpttl', async () => {
    await freshE();
    assert.deepEqual(await r.hpExpire(E, ['a'], 100000), [1]);
    near((await r.hpTTL(E, ['a']))[0], 100000, 2000);
  });
  await suite.check('hfe/hexpireat+hexpiretime', async () => {
    await freshE();
    const at = nowS() + 1000;
    assert.deepEqual(await r.hExpireAt(E, ['a'], at), [1]);
    assert.deepEqual(await r.hExpireTime(E, ['a', 'b', 'nope']), [at, -1, -2]);
    const when = new Date(Date.now() + 86400000);
    assert.deepEqual(await r.hExpireAt(E, 'b', when), [1]);
    near((await r.hExpireTime(E, 'b'))[0], Math.floor(when.getTime() / 1000), 2);
  });
  await suite.check('hfe/hpexpireat+hpexpiretime', async () => {
    await freshE();
    const atMs = Date.now() + 500000;
    assert.deepEqual(await r.hpExpireAt(E, ['a', 'b'], atMs), [1, 1]);
    assert.deepEqual(await r.hpExpireTime(E, ['a', 'b', 'c']), [atMs, atMs, -1]);
  });
  await suite.check('hfe/hpersist', async () => {
    await freshE();
    await r.hExpire(E, 'a', 100);
    assert.deepEqual(await r.hPersist(E, ['a', 'b', 'nope']), [1, -1, -2]);
  });
  await suite.check('hfe/zero-or-past-deletes', async () => {
    await freshE();
    assert.deepEqual(await r.hExpire(E, 'a', 0), [2]);
    assert.deepEqual(await r.hpExpireAt(E, 'b', 1), [2]);
    assert.equal(await r.hLen(E), 2);
  });
  await suite.check('hfe/fields-really-expire', async () => {
    await freshE();
    assert.deepEqual(await r.hpExpire(E, ['a', 'b'], 50), [1, 1]);
    await poll(async () => (await r.hmGet(E, ['a', 'b'])).every((v) => v === null), 'a and b expired');
    assert.deepEqual(plain(await r.hGetAll(E)), { c: '3', d: '4' });
    await r.hpExpire(E, ['c', 'd'], 50);
    await poll(async () => (await r.exists(E)) === 0, 'emptied hash deleted');
  });
  await suite.check('hfe/hgetex', async () => {
    await freshE();
    assert.deepEqual(await r.hGetEx(E, ['a', 'b', 'nope'], { expiration: { type: 'PX', value: 5000 } }), ['1', '2', null]);
    near((await r.hpTTL(E, 'a'))[0], 5000, 1000);
    assert.deepEqual(await r.hGetEx(E, 'c', { expiration: { type: 'EX', value: 60 } }), ['3']);
    assert.deepEqual(await r.hTTL(E, 'c'), [60]);
    const at = nowS() + 600;
    assert.deepEqual(await r.hGetEx(E, 'd', { expiration: { type: 'EXAT', value: at } }), ['4']);
    assert.deepEqual(await r.hExpireTime(E, 'd'), [at]);
    assert.deepEqual(await r.hGetEx(E, ['a', 'c'], { expiration: 'PERSIST' }), ['1', '3']);
    assert.deepEqual(await r.hTTL(E, ['a', 'c']), [-1, -1]);
    assert.deepEqual(await r.hGetEx(E, 'b', { expiration: { type: 'PXAT', value: 1 } }), ['2']);
    assert.equal(Number(await r.hExists(E, 'b')), 0);
  });
  await suite.check('hfe/hsetex', async () => {
    await r.del(E);
    assert.equal(await r.hSetEx(E, { a: '1' }, { expiration: { type: 'EX', value: 50 } }), 1);
    assert.deepEqual(await r.hTTL(E, 'a'), [50]);
    // node-redis puts FNX/FXX before the expiry: HSETEX k FNX EX 60 FIELDS ...
    assert.equal(await r.hSetEx(E, { a: 'x', b: '2' }, { mode: 'FNX', expiration: { type: 'EX', value: 60 } }), 0);
    assert.equal(await r.hGet(E, 'a'), '1');
    assert.equal(await r.hSetEx(E, new Map([['b', '2'], ['c', '3']]), { mode: 'FNX', expiration: { type: 'PX', value: 70000 } }), 1);
    near((await r.hpTTL(E, 'b'))[0], 70000, 2000);
    assert.equal(await r.hSetEx(E, [['a', 'A'], ['z', 'Z']], { mode: 'FXX' }), 0);
    assert.equal(await r.hSetEx(E, { a: 'A' }, { mode: 'FXX', expiration: 'KEEPTTL' }), 1);
    assert.deepEqual(await r.hTTL(E, 'a'), [50]);
    assert.equal(await r.hSetEx(E, { a: 'AA' }), 1);
    assert.deepEqual(await r.hTTL(E, 'a'), [-1]);
    assert.equal(await r.hSetEx(P + 'nokey2', { a: '1' }, { mode: 'FXX' }), 0);
    assert.equal(await r.exists(P + 'nokey2'), 0);
  });
  await suite.check('hfe/hgetdel', async () => {
    await freshE();
    assert.deepEqual(await r.hGetDel(E, ['a', 'nope', 'b']), ['1', null, '2']);
    assert.deepEqual(await r.hGetDel(E, ['c', 'd']), ['3', '4']);
    assert.equal(await r.exists(E), 0);
  });

  // ---- pipelines, transactions, WATCH -------------------------------------------------------
  const T = P + 'tx';
  await suite.check('pipeline/execAsPipeline', async () => {
    await r.del(T);
    const res = await r.multi().hSet(T, 'a', '1').hIncrBy(T, 'a', 5).hGet(T, 'a').hExpire(T, 'a', 100).hTTL(T, 'a').execAsPipeline();
    assert.deepEqual(res, [1, 6, '6', [1], [100]]);
  });
  await suite.check('pipeline/auto-pipelined-promises', async () => {
    const res = await Promise.all([r.hSet(T, 'b', '2'), r.hGet(T, 'b'), r.hLen(T)]);
    assert.deepEqual(res, [1, '2', 2]);
  });
  await suite.check('tx/multi-exec', async () => {
    await r.del(T);
    const res = await r.multi().hSet(T, { a: '1', b: '2' }).hIncrBy(T, 'a', 10).hGetAll(T).hGetDel(T, 'b').exec();
    assert.equal(res[0], 2);
    assert.equal(res[1], 11);
    assert.deepEqual(plain(res[2]), { a: '11', b: '2' });
    assert.deepEqual(res[3], ['2']);
  });
  await suite.check('tx/runtime-error', async () => {
    await r.del(T);
    const e = await rejects(r.multi().hSet(T, 's', 'text').hIncrBy(T, 's', 1).hSet(T, 't', '2').exec(), 'EXEC with an error');
    const texts = (e.replies ?? [e]).map((x) => (x instanceof Error ? x.message : x));
    assert.ok(texts.includes('ERR hash value is not an integer'), JSON.stringify(texts));
    assert.equal(await r.hGet(T, 't'), '2');
  });
  await suite.check('tx/watch-conflict', async () => {
    await r.del(T);
    await r.hSet(T, 'n', '1');
    const w = await client();
    const other = await client();
    await w.watch(T);
    await other.hSet(T, 'n', '100');
    const e = await rejects(w.multi().hSet(T, 'n', '2').exec(), 'EXEC after a watched key changed');
    assert.ok(e instanceof WatchError, `expected WatchError, got ${e.name}: ${e.message}`);
    assert.equal(await r.hGet(T, 'n'), '100');
    await w.close();
    await other.close();
  });
  await suite.check('tx/watch-no-conflict', async () => {
    const w = await client();
    await w.watch(T);
    assert.deepEqual(await w.multi().hSet(T, 'n', '3').exec(), [0]);
    await w.close();
  });

  // ---- big values, big pipelines ------------------------------------------------------------
  const B = P + 'big';
  await suite.check('big/1mib-value', async () => {
    await r.del(B);
    const value = oneMiB();
    assert.equal(await r.hSet(B, 'blob', value), 1);
    const rb = r.withTypeMapping({ [RESP_TYPES.BLOB_STRING]: Buffer });
    const got = await rb.hGet(B, 'blob');
    assert.ok(Buffer.isBuffer(got), 'Buffer reply');
    assert.ok(got.equals(value), '1 MiB binary value round-trips');
    assert.equal(await r.hStrLen(B, 'blob'), 1024 * 1024);
  });
  await suite.check('big/1000-command-pipeline', async () => {
    await r.del(B);
    let m = r.multi();
    for (let i = 0; i < 1000; i++) m = m.hSet(B, `f${i}`, String(i));
    assert.deepEqual(await m.execAsPipeline(), new Array(1000).fill(1));
    assert.equal(await r.hLen(B), 1000);
    const gets = await Promise.all(Array.from({ length: 1000 }, (_, i) => r.hGet(B, `f${i}`)));
    assert.deepEqual(gets, Array.from({ length: 1000 }, (_, i) => String(i)));
  });
  await suite.check('big/1000-command-transaction', async () => {
    let m = r.multi();
    for (let i = 0; i < 1000; i++) m = m.hIncrBy(B, `f${i}`, 1);
    assert.deepEqual(await m.exec(), Array.from({ length: 1000 }, (_, i) => i + 1));
  });

  // ---- keyspace notifications: hexpired from active expiry ----------------------------------
  // A field with a 300 ms TTL; the sweeper's `hexpired` must arrive within 100 ms after its
  // deadline (time just before sending HPEXPIRE + TTL) and not before it (5 ms for the server
  // stamping the deadline in whole ms). The sweeper runs every 1000/hz ms: at the default hz 10
  // a pass may come ~100 ms late, the whole allowance, so the check runs at hz 50.
  const N = P + 'notify';
  const NOTIFY_TTL_MS = 300;
  const NOTIFY_LATE_MS = 100;
  const NOTIFY_EARLY_MS = 5;
  const NOTIFY_HZ = '50';
  const awaitHexpired = async (flags, channel, wantPayload) => {
    const oldHz = (await r.configGet('hz')).hz;
    const sub = r.duplicate();
    sub.on('error', () => {});
    opened.push(sub);
    await withTimeout(sub.connect(), 10000, 'subscriber connect');
    try {
      assert.equal(await r.configSet('hz', NOTIFY_HZ), 'OK');
      assert.equal(await r.configSet('notify-keyspace-events', flags), 'OK');
      let arrived;
      let deadline;
      const others = [];
      let resolveGot;
      const got = new Promise((resolve) => { resolveGot = resolve; });
      // The third argument `true` hands the listener Buffers: the payload is compared bytewise.
      // subscribe() resolves once the server confirmed the subscription.
      await sub.subscribe(channel, (message, ch) => {
        const now = performance.now();
        if (arrived === undefined && String(ch) === channel && message.equals(Buffer.from(wantPayload))) {
          arrived = now;
          resolveGot();
        } else {
          others.push(`${ch} ${message}`);
        }
      }, true);
      await r.del(N);
      assert.equal(await r.hSet(N, { ttl: 'gone-soon', keep: 'stays' }), 2);
      const sent = performance.now();
      assert.deepEqual(await r.hpExpire(N, 'ttl', NOTIFY_TTL_MS), [1]);
      deadline = sent + NOTIFY_TTL_MS;
      // Nobody touches N until the message came, so only active expiry can reclaim the field.
      await withTimeout(got, NOTIFY_TTL_MS + 2000, `${channel} ${wantPayload} (others: ${others.join(', ')})`);
      const delayMs = arrived - deadline;
      console.log(`INFO ${suite.name} ${channel}: arrived ${delayMs >= 0 ? '+' : ''}${delayMs.toFixed(1)} ms after the deadline`);
      assert.ok(delayMs >= -NOTIFY_EARLY_MS, `hexpired ${(-delayMs).toFixed(1)} ms before the field's deadline`);
      assert.ok(delayMs <= NOTIFY_LATE_MS, `hexpired ${delayMs.toFixed(1)} ms after the deadline (allowed ${NOTIFY_LATE_MS} ms)`);
      assert.deepEqual(plain(await r.hGetAll(N)), { keep: 'stays' });
      assert.deepEqual(await r.hTTL(N, 'keep'), [-1]);
    } finally {
      await r.configSet('notify-keyspace-events', '');
      await r.configSet('hz', oldHz);
      sub.destroy();
    }
    assert.equal((await r.configGet('notify-keyspace-events'))['notify-keyspace-events'], '');
  };
  await suite.check('notify/keyevent-hexpired', async () => {
    await awaitHexpired('Eh', '__keyevent@0__:hexpired', N);
  });
  await suite.check('notify/subkeyevent-hexpired', async () => {
    await awaitHexpired('hT', '__subkeyevent@0__:hexpired', `${Buffer.byteLength(N)}:${N}|3:ttl`);
  });

  // ---- reconnect ----------------------------------------------------------------------------
  await suite.check('reconnect/after-restart', async () => {
    const R = P + 'restart';
    assert.equal(await r.hSet(R, 'f', 'before'), 1);
    restartServer('plain');
    // node-redis notices the closed socket, reconnects with its default strategy and replays
    // the handshake; commands issued meanwhile wait in its offline queue.
    await poll(async () => (await r.ping().catch(() => null)) === 'PONG', 'PING after restart', 10000);
    assert.equal(await r.hGet(R, 'f'), null, 'a restarted in-memory server is empty');
    assert.equal(await r.hSet(R, 'f', 'after'), 1);
  });
}

main()
  .catch((e) => {
    console.log(`FAIL ${suite.name} main: ${e.stack}`);
    suite.failed++;
  })
  .finally(async () => {
    for (const c of opened) {
      try { c.destroy(); } catch { /* already closed */ }
    }
    suite.finish();
  });
