'use strict';
/**
 * Packs an auto-pipelined batch for the addon's `pipelinePacked`, which then reads the whole batch
 * with a few Node-API calls instead of several per argument: `text`, every string argument end to
 * end; `lengths`, per command its argument count, then per argument its length in UTF-16 code
 * units, or `BLOB` for the next Buffer of `blobs` (Buffers, and strings over `LONG_STRING`).
 */

/** The length that stands for a Buffer argument (bindings/node/src/packed.rs). */
const BLOB = 0xffffffff;

/**
 * A string argument longer than this (UTF-16 code units) goes as a Buffer, encoded once by
 * `Buffer.from`: joining large values into `text` would copy them twice more and could pass V8's
 * string length limit, failing the whole batch. `Buffer.from` and the addon both turn a lone
 * surrogate into U+FFFD, so the bytes sent are the same either way.
 */
const LONG_STRING = 4096;

/** Packs `wires` (each `[name, ...args]`, strings or Buffers). */
function pack(wires) {
  let size = 0;
  for (let i = 0; i < wires.length; i++) size += wires[i].length + 1;
  const lengths = new Uint32Array(size);
  const blobs = [];
  let text = '';
  let at = 0;
  for (let i = 0; i < wires.length; i++) {
    const wire = wires[i];
    lengths[at++] = wire.length;
    for (let j = 0; j < wire.length; j++) {
      const arg = wire[j];
      if (typeof arg === 'string' && arg.length <= LONG_STRING) {
        text += arg;
        lengths[at++] = arg.length;
      } else {
        blobs.push(typeof arg === 'string' ? Buffer.from(arg) : arg);
        lengths[at++] = BLOB;
      }
    }
  }
  return { text, lengths, blobs };
}

module.exports = { pack };
