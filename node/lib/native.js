'use strict';
/**
 * Loads the native addon: `REDPOOL_NATIVE_LIBRARY_PATH` if set, otherwise
 * `redpool.<platform>-<arch>[-gnu|-musl].node` next to package.json (built by
 * `scripts/install.js`, napi-rs's file naming).
 */
const path = require('node:path');

/** The platform part of the addon's file name, e.g. `linux-x64-gnu`. */
function platformTriple() {
  let triple = `${process.platform}-${process.arch}`;
  if (process.platform === 'linux') {
    const glibc = process.report?.getReport?.().header?.glibcVersionRuntime;
    triple += glibc ? '-gnu' : '-musl';
  }
  return triple;
}

/** The addon's file name for this platform. */
function addonFile() {
  return path.join(__dirname, '..', `redpool.${platformTriple()}.node`);
}

function load() {
  const file = process.env.REDPOOL_NATIVE_LIBRARY_PATH || addonFile();
  try {
    return require(file);
  } catch (err) {
    const hint =
      `redpool: could not load the native addon ${file} (${err.message}). ` +
      'Build it with `node node_modules/redpool/scripts/install.js` (needs Rust/cargo; npm skips ' +
      'install scripts it was not allowed to run: `npm install --allow-scripts=redpool ...`), ' +
      'or set REDPOOL_NATIVE_LIBRARY_PATH to a built addon.';
    const error = new Error(hint);
    error.code = 'ERR_NATIVE_ADDON';
    throw error;
  }
}

module.exports = { load, addonFile, platformTriple };
