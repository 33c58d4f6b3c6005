// The original Python FlockServe (github.com/jdoodle-dev/flockserve) as a target of
// bench/datapath.mjs's proxy-bound phases, run from a checkout the user gives, unchanged:
//   git clone https://github.com/jdoodle-dev/flockserve DIR   (the commit is written to the results)
// in a venv beside it (DIR/.venv-datapath, made once: python3 -m venv, pip install -r
// python-flockserve/requirements.txt), started as its CLI is (`python -m flockserve.cli --name value`),
// with the stand-ins in python-flockserve/standins first on PYTHONPATH for what the package index
// does not carry and is not on its data path: SkyPilot's Python API (`sky`), `fire`, and the
// OpenTelemetry pieces (see each stand-in's docstring).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, startProcess, stop, waitHttp } from './procs.mjs';

export const PYTHON_FLOCKSERVE = 'Python FlockServe (original)';
const HERE = join(ROOT, 'bench/lib/python-flockserve');
/** The header the original's /add_new_node compares with its --node_control_key. */
const NODE_CONTROL_KEY = 'datapath-bench';

/** Checks the checkout, makes its venv when missing; returns what starting it and the results need. */
export function preparePythonFlockServe(source) {
  if (!existsSync(join(source, 'flockserve/flockserve.py')))
    throw new Error(
      `--python-flockserve ${source}: no flockserve/flockserve.py there (a checkout of github.com/jdoodle-dev/flockserve)`,
    );
  let commit = 'unknown (not a git checkout)';
  try {
    commit = execFileSync('git', ['-C', source, 'rev-parse', 'HEAD'], { encoding: 'utf8' }).trim();
  } catch {
    /* a plain copy of the source */
  }
  const venv = join(source, '.venv-datapath');
  const python = join(venv, 'bin/python');
  if (!existsSync(python)) {
    console.log(`making ${venv} (python3 -m venv, pip install -r ${join(HERE, 'requirements.txt')})`);
    execFileSync('python3', ['-m', 'venv', venv], { stdio: 'inherit' });
    execFileSync(python, ['-m', 'pip', 'install', '--retries', '1', '-q', '-r', join(HERE, 'requirements.txt')], {
      stdio: 'inherit',
    });
  }
  const version = execFileSync(python, ['--version'], { encoding: 'utf8' }).trim();
  return { source, commit, python, version };
}

/**
 * Starts the Python FlockServe on host:port over the workers at `workerHosts` (each listening on
 * the same port: the original reaches a worker at its cluster's head IP and its own port), brings
 * its fleet to one worker per host through its /add_new_node, and resolves once all are ready.
 * `dir` holds what it writes (flockserve.db, ~/flockserve.log, the stand-in sky's clusters).
 */
export async function startPythonFlockServe(py, { dir, host, port, workerHosts, workerCapacity }) {
  mkdirSync(dir, { recursive: true });
  const url = `http://${host}:${port}`;
  const n = workerHosts.length;
  const { child } = await startProcess(
    py.python,
    [
      '-m',
      'flockserve.cli',
      '--skypilot_task',
      join(HERE, 'task.yaml'),
      '--host',
      host,
      '--port',
      String(port),
      '--worker_capacity',
      String(workerCapacity),
      // Its autoscaler adds a worker below min_workers and removes one above max_workers or when
      // idle above min_workers: pinned, as FlockServe's fleet is.
      '--min_workers',
      String(n),
      '--max_workers',
      String(n),
      '--node_control_key',
      NODE_CONTROL_KEY,
      '--verbosity',
      '0',
    ],
    /Uvicorn running on/,
    {
      cwd: dir,
      readyOnStderr: true,
      env: {
        HOME: dir,
        PYTHONPATH: [join(HERE, 'standins'), py.source].join(':'),
        STANDIN_SKY_HOSTS: workerHosts.join(','),
        STANDIN_SKY_STATE_DIR: join(dir, 'sky'),
      },
    },
  );
  try {
    // It launches one worker at start (and its autoscaler one more below min_workers); the rest
    // come through its node-control route, as a user adds them.
    const status = async () => (await fetch(`${url}/`)).json();
    const { worker_names: names } = await status();
    for (let i = names.split(',').filter(Boolean).length; i < n; i++) {
      const res = await fetch(`${url}/add_new_node`, { headers: { node_control_key: NODE_CONTROL_KEY } });
      if (!res.ok) throw new Error(`Python FlockServe /add_new_node: ${res.status} ${await res.text()}`);
    }
    // It checks its workers every 30 s and marks one ready on the check after the one that found
    // it launched: up to a minute.
    await waitHttp(`${url}/`, async (r) => (await r.json()).ready_worker_count === n, 150_000);
  } catch (err) {
    await stopPythonFlockServe(child);
    throw err;
  }
  return { child, url };
}

/** SIGTERM (its shutdown downs each cluster through the stand-in sky), SIGKILL after 15 s. */
export async function stopPythonFlockServe(child) {
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
  await stop(child);
  clearTimeout(timer);
}
