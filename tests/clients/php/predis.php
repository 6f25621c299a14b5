<?php
// Predis (Debian php-nrk-predis, 1.1.x) against hashd: connect variants, every hash method it
// has (field-TTL commands through executeRaw: Predis 1.1 predates them), pipelines,
// MULTI/EXEC, WATCH (check-and-set transactions), a 1 MiB value, a 1,000-command pipeline,
// reconnect.

require __DIR__ . '/harness.php';
require '/usr/share/php/Predis/Autoloader.php';
Predis\Autoloader::register();

use Predis\Client;

$suite = new Suite('predis' . Client::VERSION);
const P = 'compat:predis:';

function client(array $params = []): Client
{
    global $HOST, $PORT;
    return new Client($params + ['host' => $HOST, 'port' => $PORT, 'read_write_timeout' => 10]);
}

// executeRaw returns a server error as a Predis\Response\Error object; make it a failed check.
function raw(Client $c, array $args)
{
    $got = $c->executeRaw($args);
    if ($got instanceof Predis\Response\ErrorInterface) {
        throw new CheckFailed(implode(' ', $args) . ' → ' . $got->getMessage());
    }
    return $got;
}

function client_info(Client $c): array
{
    $out = [];
    foreach (explode(' ', trim((string) $c->executeRaw(['CLIENT', 'INFO']))) as $kv) {
        [$k, $v] = array_pad(explode('=', $kv, 2), 2, '');
        $out[$k] = $v;
    }
    return $out;
}

$r = client();

$suite->check('connect/plain', function () use ($r) {
    eq((string) $r->ping(), 'PONG');
    eq($r->echo('hi there'), 'hi there');
});
$suite->check('connect/password', function () use ($AUTH_PORT, $PASSWORD) {
    $c = client(['port' => $AUTH_PORT, 'password' => $PASSWORD]);
    $c->del([P . 'auth']);
    eq($c->hset(P . 'auth', 'f', 'v'), 1);
    $c->disconnect();
});
$suite->check('connect/username+password', function () use ($AUTH_PORT, $PASSWORD) {
    $c = client(['port' => $AUTH_PORT, 'username' => 'default', 'password' => $PASSWORD]);
    eq((string) $c->ping(), 'PONG');
});
$suite->check('connect/url-password-db', function () use ($HOST, $AUTH_PORT, $PASSWORD) {
    $c = new Client("redis://default:{$PASSWORD}@{$HOST}:{$AUTH_PORT}/5");
    $c->hset(P . 'url', 'f', 'v');
    $d = client(['port' => $AUTH_PORT, 'password' => $PASSWORD, 'database' => 5]);
    eq($d->hget(P . 'url', 'f'), 'v');
});
$suite->check('connect/wrong-password', function () use ($AUTH_PORT) {
    $c = client(['port' => $AUTH_PORT, 'password' => 'not-the-password']);
    $e = throws(fn () => $c->ping(), 'PING with a wrong password');
    eq(str_contains($e->getMessage(), 'WRONGPASS'), true, $e->getMessage());
});
$suite->check('connect/missing-password', function () use ($AUTH_PORT) {
    $c = client(['port' => $AUTH_PORT]);
    $e = throws(fn () => $c->hget(P . 'x', 'f'), 'HGET without the password');
    eq(str_contains($e->getMessage(), 'NOAUTH'), true, $e->getMessage());
});
$suite->check('connect/db-index', function () use ($r) {
    $c = client(['database' => 3]);
    $c->del([P . 'db']);
    eq($c->hset(P . 'db', 'f', 'in-db-3'), 1);
    eq($r->hget(P . 'db', 'f'), null, 'not visible in db 0');
    $e = throws(fn () => client(['database' => 16])->ping(), 'database 16');
    eq(str_contains($e->getMessage(), 'DB index is out of range'), true, $e->getMessage());
});
$suite->check('connect/client-name', function () {
    // Predis 1.x has no connection option for a name: applications send CLIENT SETNAME.
    $c = client();
    eq((string) $c->client('SETNAME', 'compat-predis'), 'OK');
    eq($c->client('GETNAME'), 'compat-predis');
    eq(client_info($c)['name'] ?? null, 'compat-predis');
});

// ---- classic hash commands ------------------------------------------------------------------
const H = P . 'h';
$want = ['model' => 'Deimos', 'brand' => 'Ergonom', 'type' => 'Enduro bikes', 'price' => '4972',
    'color' => 'blue', 'gears' => '11'];
$suite->check('hash/hset+hmset+hsetnx', function () use ($r) {
    $r->del([H]);
    eq($r->hset(H, 'model', 'Deimos'), 1);
    eq((string) $r->hmset(H, ['brand' => 'Ergonom', 'type' => 'Enduro bikes', 'price' => 4972]), 'OK');
    eq($r->hsetnx(H, 'model', 'x'), 0);
    eq($r->hsetnx(H, 'color', 'blue'), 1);
    eq(raw($r, ['HSET', H, 'gears', '11', 'color', 'blue']), 1, 'variadic HSET');
});
$suite->check('hash/hget+hmget', function () use ($r) {
    eq($r->hget(H, 'model'), 'Deimos');
    eq($r->hget(H, 'nope'), null);
    eq($r->hmget(H, ['model', 'price', 'nope']), ['Deimos', '4972', null]);
});
$suite->check('hash/hgetall+hkeys+hvals', function () use ($r, $want) {
    eq($r->hgetall(H), $want);
    eq($r->hkeys(H), array_keys($want));
    eq($r->hvals(H), array_values($want));
    eq($r->hgetall(P . 'nokey'), []);
});
$suite->check('hash/hlen+hexists+hstrlen', function () use ($r) {
    eq($r->hlen(H), 6);
    eq($r->hexists(H, 'model'), 1);
    eq($r->hexists(H, 'nope'), 0);
    eq($r->hstrlen(H, 'type'), 12);
});
$suite->check('hash/hincrby+hincrbyfloat', function () use ($r) {
    eq($r->hincrby(H, 'price', 100), 5072);
    eq($r->hincrby(H, 'price', -100), 4972);
    eq($r->hincrbyfloat(H, 'weight', 10.5), '10.5');
    eq($r->hincrbyfloat(H, 'weight', 0.1), '10.6');
    $e = throws(fn () => $r->hincrby(H, 'model', 1));
    eq($e->getMessage(), 'ERR hash value is not an integer');
});
$suite->check('hash/hdel', function () use ($r) {
    eq($r->hdel(H, ['weight', 'nope']), 1);
});
$suite->check('hash/hrandfield(raw)', function () use ($r, $want) {
    eq(array_key_exists(raw($r, ['HRANDFIELD', H]), $want), true);
    eq(count(array_unique(raw($r, ['HRANDFIELD', H, 3]))), 3);
    $wv = raw($r, ['HRANDFIELD', H, 2, 'WITHVALUES']);
    eq(count($wv), 4);
    eq($want[$wv[0]], $wv[1]);
});
$suite->check('hash/hscan', function () use ($r) {
    $big = P . 'scan';
    $r->del([$big]);
    $all = [];
    for ($i = 0; $i < 300; $i++) {
        $all["f{$i}"] = (string) $i;
    }
    $r->hmset($big, $all);
    $seen = [];
    $cursor = 0;
    do {
        [$cursor, $page] = $r->hscan($big, $cursor, ['COUNT' => 50]);
        $seen += $page;
    } while ((string) $cursor !== '0');
    ksort($seen);
    ksort($all);
    eq($seen, $all);
    $m = iterator_to_array(new Predis\Collection\Iterator\HashKey($r, $big, 'f1?', 100));
    eq(count($m), 10, 'MATCH f1? through the HashKey iterator');
});

// ---- field expiration (executeRaw) ----------------------------------------------------------
const E = P . 'hfe';
$freshE = function () use ($r) {
    $r->del([E]);
    $r->hmset(E, ['a' => 1, 'b' => 2, 'c' => 3, 'd' => 4]);
};
$suite->check('hfe/hexpire+httl', function () use ($r, $freshE) {
    $freshE();
    eq(raw($r, ['HEXPIRE', E, 100, 'FIELDS', 3, 'a', 'b', 'nope']), [1, 1, -2]);
    eq(raw($r, ['HEXPIRE', E, 200, 'NX', 'FIELDS', 1, 'a']), [0]);
    eq(raw($r, ['HTTL', E, 'FIELDS', 3, 'a', 'c', 'nope']), [100, -1, -2]);
});
$suite->check('hfe/hpexpire+hpttl', function () use ($r, $freshE) {
    $freshE();
    eq(raw($r, ['HPEXPIRE', E, 100000, 'FIELDS', 1, 'a']), [1]);
    near(raw($r, ['HPTTL', E, 'FIELDS', 1, 'a'])[0], 100000, 2000);
});
$suite->check('hfe/hexpireat+hpexpireat+times', function () use ($r, $freshE) {
    $freshE();
    $at = time() + 1000;
    eq(raw($r, ['HEXPIREAT', E, $at, 'FIELDS', 1, 'a']), [1]);
    eq(raw($r, ['HEXPIRETIME', E, 'FIELDS', 2, 'a', 'b']), [$at, -1]);
    $atMs = (int) (microtime(true) * 1000) + 500000;
    eq(raw($r, ['HPEXPIREAT', E, $atMs, 'FIELDS', 1, 'b']), [1]);
    eq(raw($r, ['HPEXPIRETIME', E, 'FIELDS', 1, 'b']), [$atMs]);
});
$suite->check('hfe/hpersist', function () use ($r, $freshE) {
    $freshE();
    raw($r, ['HEXPIRE', E, 100, 'FIELDS', 1, 'a']);
    eq(raw($r, ['HPERSIST', E, 'FIELDS', 3, 'a', 'b', 'nope']), [1, -1, -2]);
});
$suite->check('hfe/fields-really-expire', function () use ($r, $freshE) {
    $freshE();
    eq(raw($r, ['HPEXPIRE', E, 50, 'FIELDS', 2, 'a', 'b']), [1, 1]);
    poll(fn () => $r->hmget(E, ['a', 'b']) === [null, null], 'a and b expired');
    eq($r->hgetall(E), ['c' => '3', 'd' => '4']);
});
$suite->check('hfe/hgetex+hsetex+hgetdel', function () use ($r, $freshE) {
    $freshE();
    eq(raw($r, ['HGETEX', E, 'EX', 60, 'FIELDS', 3, 'a', 'b', 'nope']), ['1', '2', null]);
    eq(raw($r, ['HTTL', E, 'FIELDS', 1, 'a']), [60]);
    eq(raw($r, ['HSETEX', E, 'FNX', 'EX', 50, 'FIELDS', 1, 'a', 'x']), 0);
    eq(raw($r, ['HSETEX', E, 'FXX', 'KEEPTTL', 'FIELDS', 1, 'a', 'x']), 1);
    eq(raw($r, ['HTTL', E, 'FIELDS', 1, 'a']), [60]);
    eq(raw($r, ['HGETDEL', E, 'FIELDS', 2, 'a', 'nope']), ['x', null]);
    eq($r->hexists(E, 'a'), 0);
});

// ---- pipelines, transactions, WATCH ---------------------------------------------------------
const T = P . 'tx';
$suite->check('pipeline/plain', function () use ($r) {
    $r->del([T]);
    $res = $r->pipeline(function ($p) {
        $p->hset(T, 'a', '1');
        $p->hincrby(T, 'a', 5);
        $p->hget(T, 'a');
        $p->hgetall(T);
    });
    eq($res, [1, 6, '6', ['a' => '6']]);
});
$suite->check('tx/multi-exec', function () use ($r) {
    $r->del([T]);
    $res = $r->transaction(function ($tx) {
        $tx->hset(T, 'a', '1');
        $tx->hincrby(T, 'a', 10);
        $tx->hgetall(T);
    });
    eq($res, [1, 11, ['a' => '11']]);
});
$suite->check('tx/runtime-error', function () use ($r) {
    $r->del([T]);
    $e = throws(fn () => $r->transaction(function ($tx) {
        $tx->hset(T, 's', 'text');
        $tx->hincrby(T, 's', 1);
        $tx->hset(T, 't', '2');
    }), 'transaction with a failing command');
    eq(str_contains($e->getMessage(), 'hash value is not an integer'), true, $e->getMessage());
    eq($r->hget(T, 't'), '2', 'later commands still ran');
});
$suite->check('tx/watch-conflict', function () use ($r) {
    $r->del([T]);
    $r->hset(T, 'n', '1');
    $w = client();
    $e = throws(fn () => $w->transaction(['watch' => T, 'cas' => true, 'retry' => 0], function ($tx) use ($r) {
        $tx->hget(T, 'n'); // CAS mode: runs immediately, before MULTI
        $r->hset(T, 'n', '100');
        $tx->multi();
        $tx->hset(T, 'n', '2');
    }), 'check-and-set after a conflict');
    eq($e instanceof Predis\Transaction\AbortedMultiExecException, true, get_class($e) . ': ' . $e->getMessage());
    eq($r->hget(T, 'n'), '100');
});

// ---- big values, big pipelines --------------------------------------------------------------
const B = P . 'big';
$suite->check('big/1mib-value', function () use ($r) {
    $r->del([B]);
    $v = one_mib();
    eq($r->hset(B, 'blob', $v), 1);
    eq($r->hget(B, 'blob') === $v, true, '1 MiB binary value round-trips');
    eq($r->hstrlen(B, 'blob'), 1048576);
});
$suite->check('big/1000-command-pipeline', function () use ($r) {
    $r->del([B]);
    $res = $r->pipeline(function ($p) {
        for ($i = 0; $i < 1000; $i++) {
            $p->hset(B, "f{$i}", (string) $i);
        }
    });
    eq($res, array_fill(0, 1000, 1));
    eq($r->hlen(B), 1000);
});
$suite->check('big/1000-command-transaction', function () use ($r) {
    $res = $r->transaction(function ($tx) {
        for ($i = 0; $i < 1000; $i++) {
            $tx->hincrby(B, "f{$i}", 1);
        }
    });
    eq($res, range(1, 1000));
});

// ---- reconnect ------------------------------------------------------------------------------
$suite->check('reconnect/after-restart', function () use ($r) {
    $k = P . 'restart';
    eq($r->hset($k, 'f', 'before'), 1);
    restart_server('plain');
    // Predis throws a ConnectionException for the dead socket, then reconnects on the next call.
    $ok = false;
    for ($i = 0; $i < 50 && !$ok; $i++) {
        try {
            $ok = (string) $r->ping() === 'PONG';
        } catch (Predis\Connection\ConnectionException $e) {
            usleep(100000);
        }
    }
    eq($ok, true, 'PING through the same client after restart');
    eq($r->hget($k, 'f'), null, 'a restarted in-memory server is empty');
    eq($r->hset($k, 'f', 'after'), 1);
});

$suite->finish();
