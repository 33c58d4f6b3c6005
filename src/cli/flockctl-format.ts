import {
  SloVerdict,
  WorkerState,
  sloVerdictToJSON,
  workerStateToJSON,
  type Coordination,
  type QueueWaitSlo,
  type GetStatusResponse,
  type ListWorkersResponse,
  type WatchEventsResponse,
  type Worker,
} from '../gen/flockserve/v1/node_control.js';

/** A proto enum value's name without its enum's prefix, lower case: the gateway's own word for it. */
const ownName = (protoName: string, prefix: string): string =>
  (protoName.startsWith(prefix) ? protoName.slice(prefix.length) : protoName).toLowerCase();

/** WORKER_STATE_NOT_READY → not_ready (the gateway's own state names). */
export function stateName(s: WorkerState): string {
  return ownName(workerStateToJSON(s), 'WORKER_STATE_');
}

/** 75 → "1m15s", 7300 → "2h01m". */
export function formatAge(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** Left-aligned columns separated by two spaces. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

export function workersTable(workers: readonly Worker[], nowMs: number): string {
  if (workers.length === 0) return 'no workers';
  const rows = workers.map((w) => [
    w.name,
    stateName(w.state) + (w.ejected ? ' (ejected)' : ''),
    w.url || '-',
    `${w.inFlight}/${w.capacity}`,
    formatAge(w.ageSeconds),
    w.lastProbeUnixMs > 0 ? `${formatAge((nowMs - w.lastProbeUnixMs) / 1000)} ago` : '-',
    String(w.totalRequests),
    Object.entries(w.provisionerDetail)
      .map(([k, v]) => `${k}=${v}`)
      .join(' '),
  ]);
  return table(['NAME', 'STATE', 'URL', 'IN FLIGHT', 'AGE', 'LAST PROBE', 'REQUESTS', 'DETAIL'], rows);
}

/**
 * The replicas' lines of `flockctl status` (none for one gateway without etcd), e.g.
 *   replica:    gw-b (leader: gw-a, since 2025-01-02T03:04:05.000Z, 12m04s ago)
 *   replicas:   gw-a (leader), gw-b, gw-c (leaving)
 *   etcd:       reachable
 */
function replicaRows(c: Coordination, nowMs: number): [string, string][] {
  if (c.kind === 'in-process') return [];
  const since = (ms: number): string => `${new Date(ms).toISOString()}, ${formatAge((nowMs - ms) / 1000)} ago`;
  const leader = c.leader === '' ? 'none (election under way, or etcd unreachable)' : c.leader;
  const leading = c.leader === c.replica ? 'leads' : `leader: ${leader}`;
  return [
    ['replica', `${c.replica} (${leading}${c.leaderSinceUnixMs > 0 ? `, since ${since(c.leaderSinceUnixMs)}` : ''})`],
    [
      'replicas',
      c.replicas.map((r) => `${r.id}${r.id === c.leader ? ' (leader)' : r.leaving ? ' (leaving)' : ''}`).join(', ') ||
        '-',
    ],
    [
      c.kind,
      c.storeReachable
        ? 'reachable'
        : `UNREACHABLE since ${since(c.storeUnreachableSinceUnixMs)}: serving with the last fleet seen, scaling paused`,
    ],
  ];
}

/** E.g. "p99 within 1 s: MISSED, 241 of 8819 requests late in the last 1h00m (88 allowed)". */
function sloRow(q: QueueWaitSlo): [string, string] {
  const window = `in the last ${formatAge(q.windowSeconds)}`;
  const counts = `${q.late} of ${q.requests} requests late ${window} (${q.allowed} allowed)`;
  const verdict =
    q.verdict === SloVerdict.SLO_VERDICT_HELD
      ? `held, ${counts}`
      : q.verdict === SloVerdict.SLO_VERDICT_MISSED
        ? `MISSED, ${counts}`
        : `too few requests to judge (${q.requests} ${window})`;
  return ['queue wait SLO', `p99 within ${q.seconds} s: ${verdict}`];
}

export function statusText(s: GetStatusResponse, nowMs = Date.now()): string {
  const rows: [string, string][] = [
    ['workers', `${s.workerCount} (${s.readyWorkerCount} ready)`],
    ['scale bounds', `min ${s.minWorkers}, max ${s.maxWorkers}`],
    ['queue', `${s.currentQueueLength} now (${s.gatewayQueueLength} waiting at the gateway)`],
    [
      'worker capacity',
      `${s.workerCapacity} requests per worker${s.heldAtWorkerCapacity ? ': REACHED, requests wait at the gateway for a free slot' : ''}`,
    ],
    ...(s.queueWaitSlo ? [sloRow(s.queueWaitSlo)] : []),
    ['queue running mean', s.queueLengthRunningMean.toFixed(2)],
    ['requests', String(s.totalRequests)],
    ['uptime', formatAge(s.uptimeSeconds)],
    ['autoscaler', s.autoscaler],
    ['load balancer', s.loadBalancer],
    ['provisioner', s.provisioner],
    ['worker names', s.workerNames.join(', ') || '-'],
    ...(s.loraAdapters.length > 0 ? [['LoRA adapters', s.loraAdapters.join(', ')] as [string, string]] : []),
    ...(s.coordination ? replicaRows(s.coordination, nowMs) : []),
  ];
  return rows.map(([k, v]) => `${`${k}:`.padEnd(20)}${v}`).join('\n');
}

/** One line per event, e.g. "2025-01-02T03:04:05.678Z worker skypilot-worker-2 starting → ready (readiness probe passed)". */
export function eventLine(e: WatchEventsResponse): string {
  const at = new Date(e.unixMs).toISOString();
  const ev = e.event;
  if (ev?.$case === 'workerStateChanged') {
    const { worker, previousState, reason } = ev.value;
    const name = worker?.name ?? '?';
    const to = stateName(worker?.state ?? WorkerState.WORKER_STATE_UNSPECIFIED);
    const from = stateName(previousState);
    const change = reason === 'added' ? `added (${to})` : `${from} → ${to}`;
    return `${at} worker ${name} ${change}${reason && reason !== 'added' ? ` (${reason})` : ''}`;
  }
  if (ev?.$case === 'autoscalerDecision') {
    const d = ev.value;
    return `${at} autoscaler ${d.policy} ${d.currentWorkers} → ${d.desiredWorkers} workers, queue mean ${d.queueLengthRunningMean.toFixed(2)}: ${d.reason}`;
  }
  return `${at} unknown event`;
}

// ---- --json: every field, zeros included, states in the table's words -------------------------
// The proto's canonical JSON (toJSON) leaves out fields at their default (`inFlight` at 0) and
// spells states as enum names (WORKER_STATE_READY): a script would have to know both rules.

/** A worker as JSON: every field, its state as the table says it (`ready`). */
export function workerJson(w: Worker): Record<string, unknown> {
  return { ...w, state: stateName(w.state), provisionerDetail: { ...w.provisionerDetail } };
}

export function workersJson(res: ListWorkersResponse): Record<string, unknown> {
  return { workers: res.workers.map(workerJson) };
}

export function statusJson(s: GetStatusResponse): Record<string, unknown> {
  const q = s.queueWaitSlo;
  return {
    ...s,
    workerNames: [...s.workerNames],
    ...(q ? { queueWaitSlo: { ...q, verdict: verdictName(q.verdict) } } : {}),
  };
}

/** SLO_VERDICT_MISSED → missed (as `GET /` says it). */
const verdictName = (v: SloVerdict): string => ownName(sloVerdictToJSON(v), 'SLO_VERDICT_');

/** One event as JSON: `{unixMs, workerStateChanged: {...}}` or `{unixMs, autoscalerDecision: {...}}`. */
export function eventJson(e: WatchEventsResponse): Record<string, unknown> {
  const ev = e.event;
  if (ev?.$case === 'workerStateChanged') {
    const { worker, previousState, reason } = ev.value;
    return {
      unixMs: e.unixMs,
      workerStateChanged: {
        worker: worker ? workerJson(worker) : null,
        previousState: stateName(previousState),
        reason,
      },
    };
  }
  if (ev?.$case === 'autoscalerDecision') return { unixMs: e.unixMs, autoscalerDecision: { ...ev.value } };
  return { unixMs: e.unixMs };
}
