// Test support: a throwaway redis-server on a free 127.0.0.1 port, always stopped (SIGCONT first)
// and reaped; a counting TCP proxy for round trips; a proxy that dribbles replies.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Sends one RESP command on a fresh socket; resolves to the raw reply text. */
export function rawCommand(port, ...args) {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let data = '';
    socket.setTimeout(2000, () => socket.destroy(new Error('raw command timed out')));
    socket.on('connect', () => socket.write(`*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(String(a))}\r\n${a}\r\n`).join('')}`));
    socket.on('data', (chunk) => {
      data += chunk;
      if (data.endsWith('\r\n')) socket.end();
    });
    socket.on('close', () => resolve(data));
    socket.on('error', reject);
  });
}

/** Starts redis-server; `extra` are more command-line options. */
export async function startServer(extra = []) {
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'redpool-node-'));
    const child = spawn('redis-server', ['--bind', '127.0.0.1', '--port', String(port), '--save', '', '--appendonly', 'no',
      '--dir', dir, '--logfile', path.join(dir, 'log'), '--enable-debug-command', 'local', ...extra], { stdio: 'ignore' });
    const exited = new Promise((resolve) => child.once('exit', resolve));
    for (let i = 0; i < 100; i++) {
      const reply = await rawCommand(port, 'PING').catch(() => '');
      if (reply.startsWith('+PONG') || reply.startsWith('-NOAUTH')) {
        return {
          port,
          url: `redis://127.0.0.1:${port}`,
          pid: child.pid,
          stopProcess: () => process.kill(child.pid, 'SIGSTOP'),
          continueProcess: () => process.kill(child.pid, 'SIGCONT'),
          async stop() {
            if (child.exitCode === null && child.signalCode === null) {
              try { process.kill(child.pid, 'SIGCONT'); child.kill('SIGKILL'); } catch {}
            }
            await exited;
            fs.rmSync(dir, { recursive: true, force: true });
          },
        };
      }
      if (child.exitCode !== null) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    try { child.kill('SIGKILL'); } catch {}
    await exited;
    fs.rmSync(dir, { recursive: true, force: true });
  }
  throw new Error('could not start redis-server');
}

/** Waits until the process is stopped (state T in /proc). */
export async function waitStopped(pid) {
  for (let i = 0; i < 200; i++) {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('T')) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error('server did not stop');
}

/** A loopback proxy to `port` that counts the chunks clients write (≈ round trips). */
export async function countingProxy(port) {
  const sockets = new Set();
  const stats = { writes: 0, connections: 0 };
  const server = net.createServer((client) => {
    stats.connections++;
    const upstream = net.connect(port, '127.0.0.1');
    sockets.add(client).add(upstream);
    client.on('data', (chunk) => {
      stats.writes++;
      upstream.write(chunk);
    });
    upstream.on('data', (chunk) => client.write(chunk));
    const close = () => { client.destroy(); upstream.destroy(); };
    client.on('close', close).on('error', close);
    upstream.on('close', close).on('error', close);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: server.address().port,
    stats,
    close: () => new Promise((resolve) => { for (const s of sockets) s.destroy(); server.close(resolve); }),
  };
}

/**
 * A loopback proxy to `port` that, while dribbling, forwards what the server sends one byte at a
 * time, `intervalMs` apart (a server or network that dribbles a reply). `dribble(ms)` turns it on
 * for what the server sends next (`null`: off); `close()` ends every link and its timer.
 */
export async function dribbleProxy(port, intervalMs = null) {
  let interval = intervalMs;
  const links = new Set();
  const server = net.createServer((client) => {
    const upstream = net.connect(port, '127.0.0.1');
    client.setNoDelay(true);
    const queue = []; // bytes from the server still to forward, one Buffer each
    let timer = null;
    const forwardOne = () => {
      timer = null;
      client.write(queue.shift());
      if (queue.length > 0) timer = setTimeout(forwardOne, interval ?? 0);
    };
    const close = () => {
      clearTimeout(timer);
      queue.length = 0;
      links.delete(close);
      client.destroy();
      upstream.destroy();
    };
    links.add(close);
    client.on('data', (chunk) => upstream.write(chunk));
    upstream.on('data', (chunk) => {
      if (interval === null && queue.length === 0) {
        client.write(chunk);
        return;
      }
      for (const byte of chunk) queue.push(Buffer.of(byte));
      timer ??= setTimeout(forwardOne, interval ?? 0);
    });
    client.on('close', close).on('error', close);
    upstream.on('close', close).on('error', close);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: server.address().port,
    dribble: (ms) => { interval = ms; },
    close: () => new Promise((resolve) => { for (const close of links) close(); server.close(resolve); }),
  };
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
