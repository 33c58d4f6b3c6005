// nginx and haproxy as the proxies a user would pick instead of FlockServe: configs written into a
// temp dir, each run in the foreground as a child of the bench, bound to 127.0.0.1 only.
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { children } from './procs.mjs';

/** Installs nginx, haproxy and wrk from Debian packages when a command is missing. */
export function ensureTools() {
  const missing = ['nginx', 'haproxy', 'wrk'].filter((cmd) => {
    try {
      execFileSync('bash', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
      return false;
    } catch {
      return true;
    }
  });
  if (missing.length === 0) return;
  console.log(`installing ${missing.join(' ')} (apt-get)`);
  execFileSync('apt-get', ['update'], { stdio: 'inherit' });
  execFileSync('apt-get', ['install', '-y', ...missing], {
    stdio: 'inherit',
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
}

export function versions() {
  const run = (cmd, args) => {
    try {
      // nginx -v writes to stderr; haproxy -v to stdout.
      return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
    } catch (err) {
      return String(err.stderr ?? err).trim();
    }
  };
  const nginx = execFileSync('bash', ['-c', 'nginx -v 2>&1'], { encoding: 'utf8' }).trim();
  return {
    nginx,
    haproxy: run('haproxy', ['-v']).split('\n')[0],
    wrk: run('bash', ['-c', 'wrk -v 2>&1 | head -1']),
    node: process.version,
  };
}

/**
 * nginx as a user would set it up to balance engines: least_conn, upstream keepalive, proxy_buffering off. One worker
 * process per core (auto), as an nginx user would run it; `single`: one worker process.
 */
export function nginxConfig(dir, { port, workers, nofile, single = false }) {
  // worker_connections counts both sides of a proxied request; each takes one file.
  return `worker_processes ${single ? 1 : 'auto'};
worker_rlimit_nofile ${nofile};
pid ${dir}/nginx.pid;
error_log ${dir}/nginx-error.log warn;
daemon off;
events { worker_connections ${nofile - 256}; }
http {
  access_log off;
  client_body_temp_path ${dir}/nginx-body;
  proxy_temp_path ${dir}/nginx-proxy;
  fastcgi_temp_path ${dir}/nginx-fastcgi;
  uwsgi_temp_path ${dir}/nginx-uwsgi;
  scgi_temp_path ${dir}/nginx-scgi;
  keepalive_requests 1000000;
  upstream workers {
    least_conn;
${workers.map((w) => `    server ${w} max_fails=0;`).join('\n')}
    keepalive 1024;
    keepalive_requests 1000000;
  }
  server {
    listen 127.0.0.1:${port} backlog=4096;
    location / {
      proxy_pass http://workers;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
      proxy_read_timeout 3600s;
    }
  }
}
`;
}

/**
 * haproxy as a user would set it up to balance engines: balance leastconn, http-reuse always,
 * option http-no-delay. Its default threads (one per core); `single`: one thread.
 */
export function haproxyConfig(dir, { port, workers, nofile, single = false }) {
  // haproxy's maxconn counts client connections; each also holds one to a worker (2 files).
  const maxconn = Math.floor((nofile - 256) / 2);
  return `global
  maxconn ${maxconn}
${single ? '  nbthread 1\n' : ''}  pidfile ${dir}/haproxy.pid
defaults
  mode http
  timeout connect 5s
  timeout client 3600s
  timeout server 3600s
  maxconn ${maxconn}
  option http-no-delay
frontend fe
  bind 127.0.0.1:${port}
  backlog 4096
  default_backend workers
backend workers
  balance leastconn
  http-reuse always
${workers.map((w, i) => `  server w${i} ${w}`).join('\n')}
`;
}

/**
 * haproxy in TCP mode in front of several FlockServe replicas (the README's config): each
 * connection goes to the replica with the fewest, a replica whose port refuses is marked down
 * within a second, and a refused connection is tried on another (redispatch).
 */
export function haproxyTcpConfig(dir, { port, workers, nofile }) {
  const maxconn = Math.floor((nofile - 256) / 2);
  return `global
  maxconn ${maxconn}
  pidfile ${dir}/haproxy.pid
defaults
  mode tcp
  timeout connect 2s
  timeout client 3600s
  timeout server 3600s
  maxconn ${maxconn}
  retries 2
  option redispatch
frontend fe
  bind 127.0.0.1:${port}
  backlog 4096
  default_backend gateways
backend gateways
  balance leastconn
${workers.map((w, i) => `  server g${i} ${w} check inter 500 fall 2 rise 2`).join('\n')}
`;
}

/** Starts a proxy in the foreground; resolves with its child process once its port answers. */
export async function startProxy(kind, dir, opts) {
  mkdirSync(dir, { recursive: true });
  chmodSync(dir, 0o755); // nginx workers run as nobody and need to reach their temp paths
  let child;
  if (kind === 'nginx') {
    const conf = join(dir, 'nginx.conf');
    writeFileSync(conf, nginxConfig(dir, opts));
    child = spawn('nginx', ['-c', conf, '-p', dir, '-e', join(dir, 'nginx-error.log')], {
      stdio: ['ignore', 'inherit', 'inherit'],
    });
  } else {
    const conf = join(dir, 'haproxy.cfg');
    writeFileSync(conf, (kind === 'haproxy-tcp' ? haproxyTcpConfig : haproxyConfig)(dir, opts));
    execFileSync('haproxy', ['-c', '-q', '-f', conf], { stdio: 'inherit' });
    child = spawn('haproxy', ['-db', '-f', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr.on('data', (d) => process.stderr.write(d));
  }
  children.add(child);
  let exited = false;
  child.once('exit', () => {
    exited = true;
    children.delete(child);
  });
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (exited) throw new Error(`${kind} exited at start (see ${dir})`);
    try {
      const res = await fetch(`http://127.0.0.1:${opts.port}/health`);
      await res.arrayBuffer();
      if (res.ok) return child;
    } catch {
      /* not up yet */
    }
    if (Date.now() > deadline) throw new Error(`${kind} did not answer on port ${opts.port}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
