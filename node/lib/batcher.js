'use strict';
/**
 * Auto-pipelining: commands issued in the same event-loop tick are collected and sent together as
 * one pipeline (one native call, one pooled connection, one round trip); each promise settles from
 * its own reply. A batch still in flight does not hold up the next one: it goes out on another
 * pooled connection.
 */
const { fromNative } = require('./errors');

class Batcher {
  /** `send(commands, buffers)` sends one pipeline and resolves to its replies. */
  constructor(send) {
    this.send = send;
    this.queue = [];
  }

  /** Queues a command (`wire` = `[name, ...args]`); resolves to its reply. */
  push(wire, buffers) {
    return new Promise((resolve, reject) => {
      if (this.queue.length === 0) process.nextTick(() => this.flush());
      this.queue.push({ wire, buffers, resolve, reject });
    });
  }

  /** Sends what is queued now. */
  flush() {
    const batch = this.queue;
    if (batch.length === 0) return;
    this.queue = [];
    let sent;
    try {
      sent = this.send(batch.map((e) => e.wire), batch.map((e) => e.buffers));
    } catch (err) {
      sent = Promise.reject(err);
    }
    sent.then(
      (replies) => {
        for (let i = 0; i < batch.length; i++) {
          const reply = replies[i];
          if (reply instanceof Error) batch[i].reject(fromNative(reply, batch[i].wire));
          else batch[i].resolve(reply);
        }
      },
      (err) => {
        for (const entry of batch) entry.reject(fromNative(err, entry.wire));
      },
    );
  }

  /** Rejects what is queued and not sent yet with `error`. */
  fail(error) {
    const batch = this.queue;
    this.queue = [];
    for (const entry of batch) entry.reject(error);
  }
}

module.exports = { Batcher };
