// Starting the project's own executables (from dist/) for benchmarks, and waiting for them.
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { basename, dirname, join } from 'node:path';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../..');

/** Every child still running; killed when the bench exits, whichever way it exits. */
export const children = new Set();
/** Temp directories made with tempDir; removed when the bench exits, whichever way it exits. */
const tempDirs = new Set();
process.once('exit', () => {
  // With their own children: a SIGKILLed nginx master leaves its worker processes running.
  const pids = [...children].flatMap((c) => (c.exitCode === null && c.pid ? processTree(c.pid) : []));
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});
for (const sig of ['SIGINT', 'SIGTERM']) process.once(sig, () => process.exit(130));

/** A new directory under the system's temp dir (named `prefix` + random), removed when the bench exits. */
export function tempDir(prefix) {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  tempDirs.add(dir);
  return dir;
}

/** startScript for the project's bin dist/cli/<cli>.js. */
export function startCli(cli, args, ready, env = {}, nodeArgs = [], options = {}) {
  return startScript(join(ROOT, 'dist/cli', `${cli}.js`), args, ready, env, nodeArgs, options);
}

/**
 * Starts `node [the script's shebang flags] [nodeArgs] script args`, as running the script itself
 * does, and resolves once stdout matches `ready`. (Node rather than the script, so that nodeArgs
 * such as --cpu-prof can be added.) `options` as startProcess's.
 */
export function startScript(script, args, ready, env = {}, nodeArgs = [], options = {}) {
  return startProcess(process.execPath, [...shebangNodeArgs(script), ...nodeArgs, script, ...args], ready, {
    ...options,
    env,
    name: basename(script),
  });
}

/**
 * Starts `command args` (in the repo root unless `options.cwd`, with `options.env` over this
 * process's environment) and resolves once its stdout matches `ready` (or its stderr too, with
 * `options.readyOnStderr`: a Python server logs there). `options.ipc`: with an IPC channel
 * (child.send, 'message'); `options.timeoutMs`: how long it may take to start (120 s).
 */
export function startProcess(command, args, ready, options = {}) {
  const name = options.name ?? basename(command);
  const child = spawn(command, args, {
    cwd: options.cwd ?? ROOT,
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe', ...(options.ipc ? ['ipc'] : [])],
  });
  children.add(child);
  child.once('exit', () => children.delete(child));
  let out = '';
  return new Promise((resolve, reject) => {
    // Generous by default: on a shared, busy machine a node process can take a minute and more to start.
    const timer = setTimeout(() => reject(new Error(`${name} did not start: ${out}`)), options.timeoutMs ?? 120_000);
    const onData = (d) => {
      out += d.toString();
      const m = ready.exec(out);
      if (m) {
        clearTimeout(timer);
        child.stdout.off('data', onData);
        child.stderr.off('data', onData);
        child.stdout.resume();
        child.stderr.resume();
        resolve({ child, match: m });
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', options.readyOnStderr ? onData : (d) => (out += d.toString()));
    child.once('exit', (code) => reject(new Error(`${name} exited with ${code}: ${out}`)));
  });
}

/** The node flags in a script's `#!/usr/bin/env -S node FLAGS` line; none for any other first line. */
export function shebangNodeArgs(script) {
  const first = readFileSync(script, 'utf8').split('\n', 1)[0];
  const m = /^#!.*\bnode((?:\s+\S+)*)\s*$/.exec(first);
  return m ? m[1].split(/\s+/).filter(Boolean) : [];
}

export async function stop(child) {
  if (child.exitCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
}

export async function waitHttp(url, check, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const res = await fetch(url);
      if (await check(res)) return;
    } catch {
      /* not up yet */
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${url}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A process and its direct children (nginx's workers), from /proc. */
export function processTree(pid) {
  const pids = [pid];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) pids.push(Number(entry));
    } catch {
      /* gone */
    }
  }
  return pids;
}

/** VmRSS of a process in KiB, from /proc/PID/status. */
export function rssKiB(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : NaN;
}
