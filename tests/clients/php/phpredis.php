<?php
// phpredis (Debian php-redis, 5.3.x) against hashd: connect variants, every hash method it
// has (field-TTL commands through rawCommand: typed methods arrived in phpredis 6.1/6.2),
// pipelines, MULTI/EXEC, WATCH, a 1 MiB value, a 1,000-command pipeline, reconnect.

require __DIR__ . '/harness.php';

$suite = new Suite('phpredis' . phpversion('redis'));
const P = 'compat:phpredis:';

function client(?int $port = null): Redis
{
    global $HOST, $PORT;
    $r = new Redis();
    if (!$r->connect($HOST, $port ?? $PORT, 5.0)) {
        throw new CheckFailed('connect failed');
    }
    $r->setOption(Redis::OPT_SCAN, Redis::SCAN_RETRY);
    return $r;
}

// A server error either comes back as false + getLastError() or (some replies) as an exception.
function server_error(Redis $r, callable $fn): string
{
    $r->clearLastError();
    try {
        $got = $fn();
    } catch (RedisException $e) {
        return $e->getMessage();
    }
    if ($got !== false) {
        throw new CheckFailed('expected a server error, got ' . var_export($got, true));
    }
    // phpredis 5.3 keeps a trailing NUL on some error texts.
    return rtrim((string) $r->getLastError(), "\0");
}

// rawCommand that turns a server error (false + getLastError) into a failed check.
function raw(Redis $r, ...$args)
{
    $r->clearLastError();
    $got = $r->rawCommand(...$args);
    if ($got === false && $r->getLastError() !== null) {
        throw new CheckFailed(implode(' ', $args) . ' → ' . rtrim($r->getLastError(), "\0"));
    }
    return $got;
}

function client_info(Redis $r): array
{
    $out = [];
    foreach (explode(' ', trim((string) $r->rawCommand('CLIENT', 'INFO'))) as $kv) {
        [$k, $v] = array_pad(explode('=', $kv, 2), 2, '');
        $out[$k] = $v;
    }
    return $out;
}

$r = client();

$suite->check('connect/plain', function () use ($r) {
    eq($r->ping(), true);
    eq($r->echo('hi there'), 'hi there');
});
$suite->check('connect/password', function () use ($PASSWORD, $AUTH_PORT) {
    $c = client($AUTH_PORT);
    eq($c->auth($PASSWORD), true, 'AUTH');
    $c->del(P . 'auth');
    eq($c->hSet(P . 'auth', 'f', 'v'), 1);
    $c->close();
});
$suite->check('connect/username+password', function () use ($PASSWORD, $AUTH_PORT) {
    $c = client($AUTH_PORT);
    eq($c->auth(['default', $PASSWORD]), true, 'AUTH default pw');
    eq($c->ping(), true);
    $c->close();
});
$suite->check('connect/wrong-password', function () use ($AUTH_PORT) {
    $c = client($AUTH_PORT);
    $err = server_error($c, fn () => $c->auth('not-the-password'));
    eq(str_contains($err, 'WRONGPASS'), true, "error '{$err}'");
});
$suite->check('connect/missing-password', function () use ($AUTH_PORT) {
    $c = client($AUTH_PORT);
    $err = server_error($c, fn () => $c->hGet(P . 'x', 'f'));
    eq(str_contains($err, 'NOAUTH'), true, "error '{$err}'");
});
$suite->check('connect/db-index', function () use ($r) {
    $c = client();
    eq($c->select(3), true);
    $c->del(P . 'db');
    eq($c->hSet(P . 'db', 'f', 'in-db-3'), 1);
    eq($r->hGet(P . 'db', 'f'), false, 'not visible in db 0');
    eq($c->select(16), false, 'SELECT 16 is out of range');
});
$suite->check('connect/client-name', function () {
    $c = client();
    eq($c->client('setname', 'compat-phpredis'), true);
    eq($c->client('getname'), 'compat-phpredis');
    eq(client_info($c)['name'] ?? null, 'compat-phpredis', 'CLIENT INFO name');
});

// ---- classic hash commands ------------------------------------------------------------------
const H = P . 'h';
$want = ['model' => 'Deimos', 'brand' => 'Ergonom', 'type' => 'Enduro bikes', 'price' => '4972',
    'color' => 'blue', 'gears' => '11'];
$suite->check('hash/hset+hmset+hsetnx', function () use ($r) {
    $r->del(H);
    eq($r->hSet(H, 'model', 'Deimos'), 1);
    eq($r->hSet(H, 'model', 'Deimos'), 0);
    eq($r->hMset(H, ['brand' => 'Ergonom', 'type' => 'Enduro bikes', 'price' => 4972]), true, 'hMset → HMSET');
    eq($r->hSetNx(H, 'model', 'x'), false);
    eq($r->hSetNx(H, 'color', 'blue'), true);
    eq($r->rawCommand('HSET', H, 'gears', '11', 'color', 'blue'), 1, 'variadic HSET');
});
$suite->check('hash/hget+hmget', function () use ($r) {
    eq($r->hGet(H, 'model'), 'Deimos');
    eq($r->hGet(H, 'nope'), false);
    eq($r->hMget(H, ['model', 'price', 'nope']), ['model' => 'Deimos', 'price' => '4972', 'nope' => false]);
});
$suite->check('hash/hgetall+hkeys+hvals', function () use ($r, $want) {
    eq($r->hGetAll(H), $want);
    eq($r->hKeys(H), array_keys($want));
    eq($r->hVals(H), array_values($want));
    eq($r->hGetAll(P . 'nokey'), []);
});
$suite->check('hash/hlen+hexists+hstrlen', function () use ($r) {
    eq($r->hLen(H), 6);
    eq($r->hExists(H, 'model'), true);
    eq($r->hExists(H, 'nope'), false);
    eq($r->hStrLen(H, 'type'), 12);
});
$suite->check('hash/hincrby+hincrbyfloat', function () use ($r) {
    eq($r->hIncrBy(H, 'price', 100), 5072);
    eq($r->hIncrBy(H, 'price', -100), 4972);
    eq($r->hIncrByFloat(H, 'weight', 10.5), 10.5);
    eq($r->hIncrByFloat(H, 'weight', 0.1), 10.6);
    $err = server_error($r, fn () => $r->hIncrBy(H, 'model', 1));
    eq($err, 'ERR hash value is not an integer');
});
$suite->check('hash/hdel', function () use ($r) {
    eq($r->hDel(H, 'weight', 'nope'), 1);
});
$suite->check('hash/hrandfield(raw)', function () use ($r, $want) {
    eq(array_key_exists(raw($r, 'HRANDFIELD', H), $want), true);
    eq(count(array_unique(raw($r, 'HRANDFIELD', H, 3))), 3);
    eq(count(raw($r, 'HRANDFIELD', H, -20)), 20);
    $wv = raw($r, 'HRANDFIELD', H, 2, 'WITHVALUES');
    eq(count($wv), 4);
    eq($want[$wv[0]], $wv[1]);
});
$suite->check('hash/hscan', function () use ($r) {
    $big = P . 'scan';
    $r->del($big);
    $all = [];
    for ($i = 0; $i < 300; $i++) {
        $all["f{$i}"] = (string) $i;
    }
    $r->hMset($big, $all);
    $seen = [];
    $it = null;
    while (($page = $r->hscan($big, $it, null, 50)) !== false) {
        $seen += $page;
    }
    ksort($seen);
    ksort($all);
    eq($seen, $all);
    $it = null;
    $m = [];
    while (($page = $r->hscan($big, $it, 'f1?', 1000)) !== false) {
        $m += $page;
    }
    eq(count($m), 10, 'MATCH f1?');
});

// ---- field expiration (rawCommand: phpredis 5.3 has no HFE methods) --------------------------
const E = P . 'hfe';
$freshE = function () use ($r) {
    $r->del(E);
    $r->hMset(E, ['a' => 1, 'b' => 2, 'c' => 3, 'd' => 4]);
};
$suite->check('hfe/hexpire+httl', function () use ($r, $freshE) {
    $freshE();
    eq(raw($r, 'HEXPIRE', E, 100, 'FIELDS', 3, 'a', 'b', 'nope'), [1, 1, -2]);
    eq(raw($r, 'HEXPIRE', E, 200, 'NX', 'FIELDS', 1, 'a'), [0]);
    eq(raw($r, 'HTTL', E, 'FIELDS', 3, 'a', 'c', 'nope'), [100, -1, -2]);
});
$suite->check('hfe/hpexpire+hpttl', function () use ($r, $freshE) {
    $freshE();
    eq(raw($r, 'HPEXPIRE', E, 100000, 'FIELDS', 1, 'a'), [1]);
    near(raw($r, 'HPTTL', E, 'FIELDS', 1, 'a')[0], 100000, 2000);
});
$suite->check('hfe/hexpireat+hpexpireat+times', function () use ($r, $freshE) {
    $freshE();
    $at = time() + 1000;
    eq(raw($r, 'HEXPIREAT', E, $at, 'FIELDS', 1, 'a'), [1]);
    eq(raw($r, 'HEXPIRETIME', E, 'FIELDS', 2, 'a', 'b'), [$at, -1]);
    $atMs = (int) (microtime(true) * 1000) + 500000;
    eq(raw($r, 'HPEXPIREAT', E, $atMs, 'FIELDS', 1, 'b'), [1]);
    eq(raw($r, 'HPEXPIRETIME', E, 'FIELDS', 1, 'b'), [$atMs]);
});
$suite->check('hfe/hpersist', function () use ($r, $freshE) {
    $freshE();
    raw($r, 'HEXPIRE', E, 100, 'FIELDS', 1, 'a');
    eq(raw($r, 'HPERSIST', E, 'FIELDS', 3, 'a', 'b', 'nope'), [1, -1, -2]);
});
$suite->check('hfe/fields-really-expire', function () use ($r, $freshE) {
    $freshE();
    eq(raw($r, 'HPEXPIRE', E, 50, 'FIELDS', 2, 'a', 'b'), [1, 1]);
    poll(fn () => $r->hMget(E, ['a', 'b']) === ['a' => false, 'b' => false], 'a and b expired');
    eq($r->hGetAll(E), ['c' => '3', 'd' => '4']);
});
$suite->check('hfe/hgetex+hsetex+hgetdel', function () use ($r, $freshE) {
    $freshE();
    eq(raw($r, 'HGETEX', E, 'EX', 60, 'FIELDS', 3, 'a', 'b', 'nope'), ['1', '2', false]);
    eq(raw($r, 'HTTL', E, 'FIELDS', 1, 'a'), [60]);
    eq(raw($r, 'HSETEX', E, 'FNX', 'EX', 50, 'FIELDS', 1, 'a', 'x'), 0);
    eq(raw($r, 'HSETEX', E, 'FXX', 'KEEPTTL', 'FIELDS', 1, 'a', 'x'), 1);
    eq(raw($r, 'HTTL', E, 'FIELDS', 1, 'a'), [60]);
    eq(raw($r, 'HGETDEL', E, 'FIELDS', 2, 'a', 'nope'), ['x', false]);
    eq($r->hExists(E, 'a'), false);
});

// ---- pipelines, transactions, WATCH ---------------------------------------------------------
const T = P . 'tx';
$suite->check('pipeline/plain', function () use ($r) {
    $r->del(T);
    $res = $r->multi(Redis::PIPELINE)->hSet(T, 'a', '1')->hIncrBy(T, 'a', 5)->hGet(T, 'a')
        ->rawCommand('HEXPIRE', T, 100, 'FIELDS', 1, 'a')->exec();
    eq($res, [1, 6, '6', [1]]);
});
$suite->check('tx/multi-exec', function () use ($r) {
    $r->del(T);
    $res = $r->multi()->hMset(T, ['a' => 1, 'b' => 2])->hIncrBy(T, 'a', 10)->hGetAll(T)->exec();
    eq($res, [true, 11, ['a' => '11', 'b' => '2']]);
});
$suite->check('tx/runtime-error', function () use ($r) {
    $r->del(T);
    $res = $r->multi()->hSet(T, 's', 'text')->hIncrBy(T, 's', 1)->hSet(T, 't', '2')->exec();
    eq($res, [1, false, 1]);
});
$suite->check('tx/watch-conflict', function () use ($r) {
    $r->del(T);
    $r->hSet(T, 'n', '1');
    $w = client();
    eq($w->watch(T), true);
    $r->hSet(T, 'n', '100');
    eq($w->multi()->hSet(T, 'n', '2')->exec(), false, 'EXEC after a conflict');
    eq($r->hGet(T, 'n'), '100');
});

// ---- big values, big pipelines --------------------------------------------------------------
const B = P . 'big';
$suite->check('big/1mib-value', function () use ($r) {
    $r->del(B);
    $v = one_mib();
    eq($r->hSet(B, 'blob', $v), 1);
    eq($r->hGet(B, 'blob') === $v, true, '1 MiB binary value round-trips');
    eq($r->hStrLen(B, 'blob'), 1048576);
});
$suite->check('big/1000-command-pipeline', function () use ($r) {
    $r->del(B);
    $p = $r->multi(Redis::PIPELINE);
    for ($i = 0; $i < 1000; $i++) {
        $p->hSet(B, "f{$i}", (string) $i);
    }
    eq($p->exec(), array_fill(0, 1000, 1));
    eq($r->hLen(B), 1000);
});
$suite->check('big/1000-command-transaction', function () use ($r) {
    $m = $r->multi();
    for ($i = 0; $i < 1000; $i++) {
        $m->hIncrBy(B, "f{$i}", 1);
    }
    eq($m->exec(), range(1, 1000));
});

// ---- reconnect ------------------------------------------------------------------------------
$suite->check('reconnect/after-restart', function () use ($r) {
    $k = P . 'restart';
    eq($r->hSet($k, 'f', 'before'), 1);
    restart_server('plain');
    // phpredis notices the dead socket on the next command and reconnects by itself.
    $ok = false;
    for ($i = 0; $i < 50 && !$ok; $i++) {
        try {
            $ok = $r->ping() === true;
        } catch (RedisException $e) {
            usleep(100000);
        }
    }
    eq($ok, true, 'PING through the same object after restart');
    eq($r->hGet($k, 'f'), false, 'a restarted in-memory server is empty');
    eq($r->hSet($k, 'f', 'after'), 1);
});

$suite->finish();
