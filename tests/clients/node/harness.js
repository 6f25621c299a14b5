'use strict';
// Shared plumbing for the Node.js scenarios: PASS/FAIL lines that run.sh counts, assertions,
// polling with a deadline, and restarting the plain server (see ../lib/server.sh).

const assert = require('node:assert/strict');
const { execFileSync } = require('node:child_process');
const path = require('node:path');

const env = {
  host: process.env.HASHD_HOST || '127.0.0.1',
  port: Number(process.env.HASHD_PORT || 6379),
  authPort: Number(process.env.HASHD_AUTH_PORT || 0),
  password: process.env.HASHD_PASSWORD || '',
  suiteDir: process.env.HASHD_SUITE_DIR || path.dirname(__dirname),
};

// How long a poll for a field to expire may take before it counts as a failure.
const EXPIRY_POLL_MS = 3000;
// Longest time one check may take (a client stuck in a reconnect loop must not hang the suite).
const CHECK_TIMEOUT_MS = 30000;

// Resolves like `promise`, or rejects after `ms`.
function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

class Suite {
  constructor(name) {
    this.name = name;
    this.passed = 0;
    this.failed = 0;
  }

  async check(name, fn) {
    const t0 = Date.now();
    try {
      await withTimeout(Promise.resolve().then(fn), CHECK_TIMEOUT_MS, 'check');
      const took = (Date.now() - t0) / 1000;
      this.passed++;
      console.log(`PASS ${this.name} ${name}${took >= 1 ? ` (${took.toFixed(1)}s)` : ''}`);
    } catch (e) {
      this.failed++;
      const why = String((e && e.message) || e).split(/\s+/).join(' ');
      const where = ((e && e.stack) || '').split('\n').find((l) => l.includes(path.basename(require.main.filename)));
      console.log(`FAIL ${this.name} ${name}: ${(e && e.name) || 'Error'}: ${why}${where ? ` (${where.trim()})` : ''}`);
    }
  }

  finish() {
    // Exit explicitly: a client still in a reconnect loop would keep Node running.
    process.exit(this.failed ? 1 : 0);
  }
}

async function poll(fn, what = 'condition', timeoutMs = EXPIRY_POLL_MS) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await fn()) return;
    if (Date.now() > deadline) throw new Error(`${what} not reached within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function near(got, want, tolerance, what = '') {
  if (typeof got !== 'number' || Math.abs(got - want) > tolerance) {
    throw new assert.AssertionError({ message: `${what} expected ${want} ±${tolerance}, got ${got}` });
  }
}

// Resolves with the rejection of `promise`, or fails if it resolves or does not settle in time.
async function rejects(promise, what, timeoutMs = 5000) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: neither resolved nor rejected in ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    const v = await Promise.race([promise, timeout]);
    throw new assert.AssertionError({ message: `${what}: expected an error, got ${JSON.stringify(v)}` });
  } catch (e) {
    if (e instanceof assert.AssertionError) throw e;
    if (String(e.message).includes('neither resolved nor rejected')) throw e;
    return e;
  } finally {
    clearTimeout(timer);
  }
}

function restartServer(name = 'plain') {
  execFileSync(path.join(env.suiteDir, 'lib', 'server.sh'), ['restart', name], { stdio: ['ignore', 'ignore', 'inherit'] });
}

// 1 MiB covering every byte value, so binary safety is tested too.
function oneMiB() {
  const b = Buffer.alloc(1024 * 1024);
  for (let i = 0; i < b.length; i++) b[i] = i % 256;
  return b;
}

function argResp() {
  const i = process.argv.indexOf('--resp');
  return i >= 0 ? Number(process.argv[i + 1]) : 3;
}

const nowS = () => Math.floor(Date.now() / 1000);

module.exports = { withTimeout, assert, env, Suite, poll, near, rejects, restartServer, oneMiB, argResp, nowS };
