// The breaker judges calls, and errors name the cause (issue 14.7): against a port with nothing
// listening, the client's start-up check and its first awaited commands each report the refusal
// (one failed call counts once toward the breaker, however many attempts its retries made), and
// the open circuit then names the failure that opened it; after a wrong password every error is
// ERR_AUTH, never "unreachable". The Node twin of tests/first_errors.rs.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import Redis from 'redpool';
import { startServer, freePort } from './helpers.mjs';

const PASSWORD = 'right-pw';
const LIMIT = { timeout: 60000 };
/** Short backoffs keep the tests quick; retries (3) and the breaker threshold (5) are the defaults. */
const QUICK = { retry_backoff_base: '5ms', retry_backoff_cap: '20ms', reconnect_backoff_base: '5ms', reconnect_backoff_cap: '20ms' };

/** The error `promise` rejects with (it must reject). */
const failure = (promise) => promise.then(() => assert.fail('the command succeeded'), (err) => err);

let server;
before(async () => { server = await startServer(['--requirepass', PASSWORD]); });
after(async () => { await server.stop(); });

test('the first commands against a closed port each report the refusal, then the circuit names it', LIMIT, async () => {
  const redis = new Redis(await freePort(), '127.0.0.1', { knobs: QUICK }); // connects (PINGs) at once
  const errorEvents = [];
  redis.on('error', (err) => errorEvents.push(err));
  try {
    for (let call = 1; call <= 3; call++) {
      const err = await failure(redis.get('k'));
      assert.equal(err.code, 'ERR_CONNECTION', `call ${call}: ${err.code} ${err.message}`);
      assert.match(err.message, /refused/, `call ${call}`);
      assert.ok(redis.stats().retries >= 3 * call, `call ${call} was not retried`);
    }
    assert.ok(errorEvents.length >= 1, 'no error event');
    assert.equal(errorEvents[0].code, 'ERR_CONNECTION', errorEvents[0].message);
    assert.match(errorEvents[0].message, /refused/);
    // The circuit opens within a few more calls (the start-up check was one), naming the refusal.
    let err;
    for (let call = 4; call <= 10 && err?.code !== 'ERR_CIRCUIT_OPEN'; call++) {
      err = await failure(redis.get('k'));
      if (err.code !== 'ERR_CIRCUIT_OPEN') assert.equal(err.code, 'ERR_CONNECTION', `call ${call}: ${err.message}`);
    }
    assert.equal(err.code, 'ERR_CIRCUIT_OPEN', err.message);
    assert.match(err.message, /last:.*refused/);
  } finally {
    redis.disconnect();
  }
});

test('after a wrong password every error is ERR_AUTH, never "unreachable"', LIMIT, async () => {
  const redis = new Redis(server.port, '127.0.0.1', { password: 'wrong-pw', knobs: { reconnect_backoff_base: '2s', reconnect_backoff_cap: '2s' } });
  const errorEvents = [];
  redis.on('error', (err) => errorEvents.push(err));
  try {
    for (let call = 1; call <= 3; call++) {
      const err = await failure(redis.get('k'));
      assert.equal(err.code, 'ERR_AUTH', `call ${call}: ${err.code} ${err.message}`);
      assert.match(err.message, /authentication/, `call ${call}`);
      assert.doesNotMatch(err.message, /unreachable|wrong-pw/, `call ${call}`);
    }
    assert.ok(errorEvents.length >= 1, 'no error event');
    for (const err of errorEvents) {
      assert.equal(err.code, 'ERR_AUTH', err.message);
      assert.doesNotMatch(err.message, /unreachable|wrong-pw/);
    }
  } finally {
    redis.disconnect();
  }
});
