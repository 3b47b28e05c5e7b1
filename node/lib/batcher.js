'use strict';
/**
 * Auto-pipelining: commands issued in the same event-loop tick are collected and sent together as
 * one pipeline (one native call, one pooled connection, one round trip); each promise settles from
 * its own reply. A batch still in flight does not hold up the next one: it goes out on another
 * pooled connection.
 *
 * A queued command costs its promise and one slot in each of four arrays (no object or closure of
 * its own): with 100 commands in flight, what lives until the replies come is what the young
 * generation's collections copy.
 */
const { fromNative } = require('./errors');

/** The resolve and reject functions of the promise `new Promise(capture)` just created. */
const captured = { resolve: null, reject: null };
function capture(resolve, reject) {
  captured.resolve = resolve;
  captured.reject = reject;
}

/** One tick's commands: parallel arrays, one slot per command. */
class Batch {
  constructor() {
    this.wires = [];
    this.buffers = [];
    this.resolves = [];
    this.rejects = [];
    /** Whether a command asked for Buffer replies (else the native call gets no flags). */
    this.anyBuffers = false;
  }

  /** Settles each command from its own reply (an Error reply rejects that command alone). */
  settle(replies) {
    for (let i = 0; i < this.wires.length; i++) {
      const reply = replies[i];
      if (reply instanceof Error) this.rejects[i](fromNative(reply, this.wires[i]));
      else this.resolves[i](reply);
    }
  }

  /** Rejects every command with `err` (made a redpool error naming each command). */
  fail(err) {
    for (let i = 0; i < this.wires.length; i++) this.rejects[i](fromNative(err, this.wires[i]));
  }
}

function flushBatcher(batcher) {
  batcher.flush();
}

class Batcher {
  /** `send(commands, buffers)` sends one pipeline and resolves to its replies. */
  constructor(send) {
    this.send = send;
    this.queue = new Batch();
  }

  /** Queues a command (`wire` = `[name, ...args]`); resolves to its reply. */
  push(wire, buffers) {
    const queue = this.queue;
    if (queue.wires.length === 0) process.nextTick(flushBatcher, this);
    const promise = new Promise(capture);
    queue.wires.push(wire);
    queue.buffers.push(buffers);
    queue.resolves.push(captured.resolve);
    queue.rejects.push(captured.reject);
    captured.resolve = null;
    captured.reject = null;
    if (buffers) queue.anyBuffers = true;
    return promise;
  }

  /** Sends what is queued now. */
  flush() {
    const batch = this.queue;
    if (batch.wires.length === 0) return;
    this.queue = new Batch();
    let sent;
    try {
      // No flags: every reply is a string (the native call reads a missing flag as false).
      sent = this.send(batch.wires, batch.anyBuffers ? batch.buffers : []);
    } catch (err) {
      sent = Promise.reject(err);
    }
    sent.then(
      (replies) => batch.settle(replies),
      (err) => batch.fail(err),
    );
  }

  /** Rejects what is queued and not sent yet with `error`. */
  fail(error) {
    const batch = this.queue;
    this.queue = new Batch();
    for (const reject of batch.rejects) reject(error);
  }
}

module.exports = { Batcher };
