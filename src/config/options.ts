/**
 * The one options table. The CLI flags (snake_case and kebab-case), the environment
 * variables, the programmatic API's camelCase fields, `--help` and the README's
 * arguments table are all derived from it: add an option here and nowhere else.
 *
 * Names and defaults of the original FlockServe's arguments are the original's, so its command lines work unchanged.
 */

import { AUTOSCALER_NAMES } from '../core/autoscaler/registry.js';
import { DEFAULT_QUEUE_WAIT_SLO_S } from '../core/autoscaler/slo.js';
import { DEFAULT_TARGET_QUEUE_PER_WORKER } from '../core/autoscaler/target-tracking.js';
import { ENGINE_LOAD_DEFAULTS } from '../core/balancer/engine-load.js';
import { PREFIX_CACHE_DEFAULTS } from '../core/balancer/prefix-cache.js';
import { PREFIX_HASH_DEFAULTS } from '../core/balancer/prefix-hash.js';
import { BALANCER_NAMES } from '../core/balancer/registry.js';
import { SESSION_AFFINITY_DEFAULTS } from '../core/balancer/session-affinity.js';
import { PROVISIONER_NAMES } from '../provisioners/names.js';

export type OptionType = 'string' | 'int' | 'number' | 'bool' | 'json' | 'list';

export interface OptionSpec {
  readonly type: OptionType;
  readonly help: string;
  /** Undefined means "not set" (the option is optional, or required when `required`). */
  readonly default?: string | number | boolean | readonly string[] | Record<string, unknown>;
  readonly required?: boolean;
  /** Allowed values for a string option. */
  readonly choices?: readonly string[];
  readonly min?: number;
  readonly max?: number;
  /** What each entry of a list option must match, and how to say so. */
  readonly each?: { readonly pattern: RegExp; readonly wanted: string };
  /** Where the option comes from, for the README table: FlockServe's own or new here. */
  readonly origin?: 'flockserve' | 'new';
}

export const OPTIONS = {
  skypilot_task: {
    type: 'string',
    required: true,
    help: 'Path to the SkyPilot task YAML that runs one worker (the inference engine).',
    origin: 'flockserve',
  },
  worker_capacity: {
    type: 'int',
    default: 30,
    min: 1,
    help: 'Maximum concurrent requests a worker is sent; more wait in the gateway queue.',
    origin: 'flockserve',
  },
  worker_name_prefix: {
    type: 'string',
    default: 'skypilot-worker',
    help: 'Workers are named <prefix>-<n>; on start, clusters with this prefix are adopted.',
    origin: 'flockserve',
  },
  host: {
    type: 'string',
    default: '0.0.0.0',
    help: 'Address the HTTP and gRPC listeners bind to.',
    origin: 'flockserve',
  },
  port: {
    type: 'int',
    default: -1,
    min: -1,
    max: 65535,
    help: "HTTP port of the gateway and of the workers; -1 reads it from the task's resources.ports.",
    origin: 'flockserve',
  },
  worker_ready_path: {
    type: 'string',
    default: '/health',
    help: 'Path on a worker that answers 200 once it can serve.',
    origin: 'flockserve',
  },
  min_workers: {
    type: 'int',
    default: 1,
    min: 0,
    help: 'Fewest workers kept running; 0 allows scale-to-zero.',
    origin: 'flockserve',
  },
  max_workers: {
    type: 'int',
    default: 2,
    min: 1,
    help: 'Most workers ever running or launching.',
    origin: 'flockserve',
  },
  autoscale_up: {
    type: 'number',
    default: 7,
    min: 0,
    help: "running-mean: scale up when the running mean of the queue length per worker exceeds this (flockserve-classic: the whole queue's running mean).",
    origin: 'flockserve',
  },
  autoscale_down: {
    type: 'number',
    default: 4,
    min: 0,
    help: "running-mean: scale down when the running mean of the queue length per worker is below this (flockserve-classic: the whole queue's running mean).",
    origin: 'flockserve',
  },
  queue_tracking_window: {
    type: 'number',
    default: 600,
    min: 1,
    help: 'Seconds over which the time-weighted running mean of the queue length is kept.',
    origin: 'flockserve',
  },
  api_key: {
    type: 'list',
    default: [],
    help: "Keys a client must present (Authorization: Bearer KEY) for the inference and engine routes, on HTTP and gRPC, as vLLM's --api-key; comma-separated for several. Unset: open. The gateway's own routes (/, /health, /metrics) stay open.",
    origin: 'new',
  },
  node_control_key: {
    type: 'string',
    help: 'Bearer key for node control (gRPC NodeControl, flockctl, /add_new_node); unset turns node control off.',
    origin: 'flockserve',
  },
  metrics_id: {
    type: 'int',
    default: 1,
    help: 'Suffix of the OpenTelemetry metric names (e.g. requestcounter1); negative turns OTLP export off (as OTEL_SDK_DISABLED=true does).',
    origin: 'flockserve',
  },
  verbosity: {
    type: 'int',
    default: 1,
    min: 0,
    max: 2,
    help: 'Log level: 0 warnings and errors, 1 info, 2 debug (one line per request).',
    origin: 'flockserve',
  },
  otel_collector_endpoint: {
    type: 'string',
    help: "OTLP gRPC endpoint the metrics (and, with otel_traces, the spans) are exported to. Unset: OpenTelemetry's OTEL_EXPORTER_OTLP_METRICS_ENDPOINT (spans: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT), else OTEL_EXPORTER_OTLP_ENDPOINT, else http://localhost:4317 (FlockServe's default).",
    origin: 'flockserve',
  },
  otel_metrics_exporter_settings: {
    type: 'json',
    default: {},
    help: 'JSON object passed to the OTLP metrics exporter.',
    origin: 'flockserve',
  },
  provisioner: {
    type: 'string',
    default: 'skypilot',
    choices: PROVISIONER_NAMES,
    help: 'How workers are made: SkyPilot clusters, local child processes, or a static list of URLs.',
    origin: 'new',
  },
  workers: {
    type: 'list',
    default: [],
    help: 'Comma-separated base URLs of already running engines (provisioner static); min_workers and max_workers default to their count.',
    origin: 'new',
  },
  grpc_port: {
    type: 'int',
    default: -1,
    min: -1,
    max: 65535,
    help: 'Port of the gRPC listener; -1 means the HTTP port + 1 (0 picks a free port).',
    origin: 'new',
  },
  max_queue_length: {
    type: 'int',
    default: 1024,
    min: 0,
    help: 'Requests that may wait at the gateway for a free worker slot; more get 429.',
    origin: 'new',
  },
  queue_timeout: {
    type: 'number',
    default: 60,
    min: 0,
    help: 'Seconds a request may wait at the gateway for a worker slot before a 503 with Retry-After.',
    origin: 'new',
  },
  worker_probe_interval: {
    type: 'number',
    default: 2,
    min: 0.05,
    help: 'Seconds between readiness probes of each worker.',
    origin: 'new',
  },
  worker_probe_timeout: {
    type: 'number',
    default: 5,
    min: 0.05,
    help: 'Seconds before a readiness probe counts as failed.',
    origin: 'new',
  },
  worker_unhealthy_timeout: {
    type: 'number',
    default: 180,
    min: 1,
    help: 'Seconds a worker may fail readiness probes (or take to become ready) before it is replaced.',
    origin: 'new',
  },
  drain_timeout: {
    type: 'number',
    default: 30,
    min: 0,
    help: 'Seconds in-flight requests get to finish on shutdown or scale-down before workers are terminated.',
    origin: 'new',
  },
  cors_allow_origins: {
    type: 'list',
    default: [],
    help: 'Comma-separated origins (scheme://host[:port]) whose pages may call the gateway from a browser, or * for any; the gateway answers their CORS preflights and is the one CORS boundary. Empty: the gateway adds no CORS headers and answers no preflight (vLLM allows * by default).',
    each: {
      pattern: /^(\*|[a-z][a-z0-9+.-]*:\/\/[^/?#\s]+)$/i,
      wanted: 'origins like https://app.example.com (no path), or *',
    },
    origin: 'new',
  },
  max_body_size: {
    type: 'int',
    default: 10 * 1024 * 1024,
    min: 1024,
    help: 'Largest request body accepted, in bytes; larger gets 413.',
    origin: 'new',
  },
  status_log_interval: {
    type: 'number',
    default: 10,
    min: 0,
    help: "Seconds between FlockServe's status lines (Workers, Workers Ready, Worker Load, QLRM); 0 turns them off.",
    origin: 'new',
  },
  autoscale_interval: {
    type: 'number',
    default: 30,
    min: 0.1,
    help: 'Seconds between autoscaler decisions.',
    origin: 'new',
  },
  downscale_delay: {
    type: 'number',
    default: 300,
    min: 0,
    help: 'Seconds after a scale-up during which no worker is removed. 300 s is about one GPU cluster launch, so a worker launched for a burst is not torn down before it has served.',
    origin: 'new',
  },
  load_balancer: {
    type: 'string',
    default: 'least-connection',
    choices: BALANCER_NAMES,
    help: "How a request picks among ready workers with a free slot: least-connection (lowest in-flight/capacity, ties at random), round-robin, random, power-of-two, session-affinity (prompt_cache_key, user field or x-session-id), prefix-cache (longest prompt-prefix match, unless its worker runs far past its share or has more prompt waiting for prefill than the match saves), prefix-hash (the prompt's first prefix_hash_chars, or the session key, on a consistent-hash ring with bounded loads: no tree, the same pick from every replica from a prefix's second request on), engine-load (in flight plus the engines' /metrics).",
    origin: 'new',
  },
  autoscaler: {
    type: 'string',
    default: 'slo',
    choices: AUTOSCALER_NAMES,
    help: "Autoscaling policy: slo (sizes the fleet for queue_wait_slo from the recent load's rate and peaks and a fitted model of the workers' service time; keeps an idle worker for a launch delay), target-tracking (ceil(queue length running mean / target_queue_per_worker), with a panic window), running-mean (running mean per worker against autoscale_up/autoscale_down), flockserve-classic (the original total-queue rule, one step per check). See docs/autoscaling.md.",
    origin: 'new',
  },
  seed: {
    type: 'int',
    help: 'Seed of the random source for balancer tie-breaks; unset means a random seed (simulate and plan: 1, so the same command gives the same numbers).',
    origin: 'new',
  },
  otel_export_interval: {
    type: 'number',
    min: 0.1,
    help: "Seconds between OTLP metric exports. Unset: OpenTelemetry's OTEL_METRIC_EXPORT_INTERVAL (milliseconds), else 120 (FlockServe's).",
    origin: 'new',
  },
  otel_traces: {
    type: 'bool',
    default: false,
    help: 'A span per request (route, worker, status, tokens) and a W3C traceparent to the worker; spans are exported over OTLP gRPC to otel_collector_endpoint (with otel_metrics_exporter_settings).',
    origin: 'new',
  },
  request_log: {
    type: 'string',
    help: "SQLite file that gets one row per request (FlockServe's requests table); unset turns it off.",
    origin: 'new',
  },
  request_log_bodies: {
    type: 'bool',
    default: false,
    help: 'Also store request and response bodies in the request log (off by default: prompts can be private).',
    origin: 'new',
  },
  log_format: {
    type: 'string',
    default: 'auto',
    choices: ['auto', 'json', 'pretty'],
    help: 'Log lines: json (one JSON object per line), pretty (readable), auto (pretty on a terminal, else json).',
    origin: 'new',
  },
  worker_env: {
    type: 'list',
    default: [],
    help: 'Comma-separated KEY=VALUE environment variables for every worker (skypilot: sky launch --env KEY=VALUE).',
    origin: 'new',
  },
  worker_autostop_minutes: {
    type: 'int',
    min: 0,
    help: 'Tear a SkyPilot worker down after this many idle minutes even if the gateway is gone (sky launch -i N --down); unset = never.',
    origin: 'new',
  },
  max_concurrent_launches: {
    type: 'int',
    default: 4,
    min: 1,
    help: 'Most `sky launch` commands running at once; further launches wait their turn.',
    origin: 'new',
  },
  launch_timeout: {
    type: 'number',
    default: 1800,
    min: 1,
    help: 'Seconds a worker launch may take; then its process group is killed and the cluster torn down.',
    origin: 'new',
  },
  max_launch_retries: {
    type: 'int',
    default: 3,
    min: 0,
    help: 'A failed launch is torn down and retried under the same name this many times (exponential backoff with jitter) before the worker is marked failed and a new one is launched.',
    origin: 'new',
  },
  launch_retry_delay: {
    type: 'number',
    default: 5,
    min: 0.01,
    help: 'Seconds before the first retry of a failed launch; doubles with each failure in a row (5, 10, 20 ... up to 300), ±20% jitter.',
    origin: 'new',
  },
  log_dir: {
    type: 'string',
    help: 'Folder of the per-worker logs (<worker>.log: launch output, or the local process output); unset = ~/.flockserve/logs.',
    origin: 'new',
  },
  reinit: {
    type: 'bool',
    default: false,
    help: 'At start-up, cancel the jobs on running <worker_name_prefix>-<n> clusters and launch the task on them again, instead of adopting them as they are.',
    origin: 'flockserve',
  },
  keep_workers_on_exit: {
    type: 'bool',
    default: false,
    help: 'On SIGTERM/SIGINT, drain but leave the workers running, for the next start to adopt.',
    origin: 'new',
  },
  sky_command_timeout: {
    type: 'number',
    default: 120,
    min: 1,
    help: 'Seconds any `sky` command other than launch may take before it is killed (status, down, cancel).',
    origin: 'new',
  },
  sky_refresh_interval: {
    type: 'number',
    default: 60,
    min: 0.1,
    help: 'Seconds between `sky status --refresh` checks for preempted or vanished workers (each one queries the clouds).',
    origin: 'new',
  },
  connect_timeout: {
    type: 'number',
    default: 10,
    min: 0.01,
    help: 'Seconds to open a connection to a worker; a connect failure is retried on another worker.',
    origin: 'new',
  },
  first_byte_timeout: {
    type: 'number',
    default: 300,
    min: 0.01,
    help: "Seconds from a request's dispatch to the worker's response headers (504 after). Generous: prefill of a long prompt on a busy engine takes minutes, and a non-streamed answer arrives only when generation is done.",
    origin: 'new',
  },
  idle_timeout: {
    type: 'number',
    default: 120,
    min: 0.01,
    help: 'Seconds a worker may go silent between chunks of its answer (a stalled stream ends with an error). A slow client reading does not count: the gateway stops reading from the worker then.',
    origin: 'new',
  },
  request_timeout: {
    type: 'number',
    default: 1800,
    min: 0,
    help: 'Seconds a request may take in all, from its arrival to the last byte of the answer; 0 means no limit.',
    origin: 'new',
  },
  max_retries: {
    type: 'int',
    default: 2,
    min: 0,
    help: 'Further attempts, on another worker when there is one, after a connect error, a reset or a 502/503 before any byte reached the client.',
    origin: 'new',
  },
  retry_backoff: {
    type: 'number',
    default: 0.05,
    min: 0,
    help: 'Seconds before the first retry; doubles for each further one (0.05 → 0.05, 0.1, 0.2 s).',
    origin: 'new',
  },
  outlier_consecutive_failures: {
    type: 'int',
    default: 5,
    min: 0,
    help: 'Failures in a row (connect errors, timeouts, 5xx, broken streams) that eject a worker from balancing; 0 turns outlier detection off. The last serving worker is never ejected.',
    origin: 'new',
  },
  outlier_ejection_time: {
    type: 'number',
    default: 30,
    min: 0.01,
    help: 'Seconds the first ejection lasts; each further ejection in a row doubles it, up to 10x (30 → 30, 60, 120, 240, 300 s). A passing readiness probe after that readmits the worker.',
    origin: 'new',
  },
  max_header_size: {
    type: 'int',
    default: 16 * 1024,
    min: 1024,
    help: "Largest total size of the request headers (a gRPC call: its metadata), in bytes; larger gets 431 (gRPC: RESOURCE_EXHAUSTED, headers_too_large; metadata past node's HTTP/2 limit, about 64 KiB, is reset by HTTP/2 itself).",
    origin: 'new',
  },
  client_header_timeout: {
    type: 'number',
    default: 60,
    min: 0,
    help: "Seconds a client may take to send a request's head (request line and headers), counted from the connection (or from the first byte of a later request on it), as nginx's client_header_timeout; then 408 and the connection is closed, between 1 and 1.25 times this (node's headersTimeout). 0 means no limit.",
    origin: 'new',
  },
  client_body_timeout: {
    type: 'number',
    default: 60,
    min: 0,
    help: "Seconds a request body may go without a byte arriving, as nginx's client_body_timeout (the time between two reads, not for the whole body); then 408 and the connection is closed, between 1 and 1.25 times this after the last byte. 0 means no limit.",
    origin: 'new',
  },
  client_request_timeout: {
    type: 'number',
    default: 300,
    min: 0,
    help: "Seconds a client may take to send one whole request, head and body, however steadily it trickles (node's requestTimeout, its default); then 408 and the connection is closed. 0 means no limit.",
    origin: 'new',
  },
  client_send_timeout: {
    type: 'number',
    default: 60,
    min: 0,
    help: "Seconds an answer may go without the client taking any of it, as nginx's send_timeout (the time between two writes it takes, not for the whole answer); then the worker's request is cancelled, freeing its slot, and an HTTP connection is cut. A gRPC call ends with client_timeout after the messages already sent to it (grpc-js resets no single stream), holding its stream until the client reads or its connection goes. 0 means no limit.",
    origin: 'new',
  },
  keepalive_timeout: {
    type: 'number',
    default: 72,
    min: 0.1,
    help: "Seconds an idle client connection (no request in progress) stays open: node's keepAliveTimeout on HTTP (node adds 1 s), grpc.max_connection_idle_ms on gRPC (a GOAWAY; clients reconnect for their next call). Keep it above the idle timeout of a load balancer in front (60 s on AWS ALB).",
    origin: 'new',
  },
  max_connections: {
    type: 'int',
    default: 16384,
    min: 0,
    help: 'Client connections each listener (HTTP, gRPC) keeps open at once; one more is closed as soon as it is accepted, and counted in flockserve_client_connections_refused. Keep it under the open-file limit (ulimit -n) less the connections to workers. 0 means no limit.',
    origin: 'new',
  },
  grpc_max_concurrent_streams: {
    type: 'int',
    default: 1000,
    min: 1,
    help: 'Calls one gRPC connection may run at once (HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS); further calls wait in the client until one ends.',
    origin: 'new',
  },
  grpc_keepalive_time: {
    type: 'number',
    default: 60,
    min: 1,
    help: 'Seconds between the HTTP/2 PINGs the gateway sends each gRPC client connection; one unanswered for 20 s closes the connection and cancels its calls (a client that vanished without closing its socket).',
    origin: 'new',
  },
  max_json_depth: {
    type: 'int',
    default: 64,
    min: 1,
    help: 'Deepest nesting of objects and arrays accepted in a JSON body; deeper gets 400.',
    origin: 'new',
  },
  repetition_guard: {
    type: 'int',
    default: 0,
    min: 0,
    help: 'Ends a stream once one line of generated text longer than 10 characters has repeated more than this many times (a model stuck in a loop); the stream ends normally and the worker stops generating. 0 turns it off.',
    origin: 'new',
  },
  cold_start_timeout: {
    type: 'number',
    default: 600,
    min: 0,
    help: 'Seconds a request may wait while no worker is ready (scale-from-zero, or every worker down), instead of queue_timeout; a SkyPilot GPU launch takes minutes.',
    origin: 'new',
  },
  target_queue_per_worker: {
    type: 'number',
    default: DEFAULT_TARGET_QUEUE_PER_WORKER,
    min: 0.01,
    help: 'target-tracking: the running mean of the queue length each worker should carry; desired workers = ceil(mean / this).',
    origin: 'new',
  },
  queue_wait_slo: {
    type: 'number',
    default: DEFAULT_QUEUE_WAIT_SLO_S,
    min: 0,
    help: 'slo: the p99 gateway queue wait, in seconds, the fleet is sized to hold (from the recent peaks of load per launch delay); a warning, a metric and the status say when max_workers keeps it from holding.',
    origin: 'new',
  },
  panic_window: {
    type: 'number',
    default: 6,
    min: 1,
    help: "target-tracking: seconds of the short mean checked every 2 s; above 2x the fleet's target load it scales up at once and not down (Knative panic mode).",
    origin: 'new',
  },
  tls_cert: {
    type: 'string',
    help: 'PEM certificate (chain) file: with tls_key, both the HTTP and the gRPC listener serve TLS.',
    origin: 'new',
  },
  tls_key: {
    type: 'string',
    help: 'PEM private key file of tls_cert.',
    origin: 'new',
  },
  etcd_endpoints: {
    type: 'list',
    default: [],
    help: 'Comma-separated etcd client URLs (all http:// or all https://): gateway replicas with the same etcd_prefix share one fleet, one of them leading it. Empty: one gateway, no etcd.',
    origin: 'new',
  },
  etcd_prefix: {
    type: 'string',
    help: 'Key prefix of this service in etcd; replicas with the same prefix share one fleet, so two services can share one etcd. Default /flockserve/<worker_name_prefix>/.',
    origin: 'new',
  },
  etcd_lease_ttl: {
    type: 'int',
    default: 5,
    min: 1,
    help: "Seconds a replica's etcd lease outlives its last keepalive: a dead leader is replaced after about this long, and a leader cut off from etcd stops scaling after it.",
    origin: 'new',
  },
  etcd_ca: {
    type: 'string',
    help: "PEM file of the CA that signed the etcd members' certificates (needed for https:// endpoints).",
    origin: 'new',
  },
  etcd_cert: {
    type: 'string',
    help: 'PEM client certificate (with etcd_key), for an etcd that asks for one (--client-cert-auth).',
    origin: 'new',
  },
  etcd_key: {
    type: 'string',
    help: 'PEM private key of etcd_cert.',
    origin: 'new',
  },
  etcd_user: {
    type: 'string',
    help: 'etcd user name, when etcd has authentication on (with etcd_password).',
    origin: 'new',
  },
  etcd_password: {
    type: 'string',
    help: 'Password of etcd_user; prefer the environment variable to the flag, which ps shows.',
    origin: 'new',
  },
  replica_name: {
    type: 'string',
    help: "This gateway's name among the replicas that share a fleet (status, logs, etcd keys); unique per replica. Default <hostname>-<pid>.",
    origin: 'new',
  },
  cache_threshold: {
    type: 'number',
    default: PREFIX_CACHE_DEFAULTS.cacheThreshold,
    min: 0,
    max: 1,
    help: 'prefix-cache: route to the worker with the longest prompt-prefix match only when the match covers more than this fraction of the prompt.',
    origin: 'new',
  },
  cache_min_chars: {
    type: 'int',
    default: PREFIX_CACHE_DEFAULTS.cacheMinChars,
    min: 0,
    help: 'prefix-cache: a match shorter than this many characters only chooses among the least loaded workers, never a busier one (a short shared prefix saves less prefill than a wait costs).',
    origin: 'new',
  },
  balance_abs_threshold: {
    type: 'int',
    default: PREFIX_CACHE_DEFAULTS.balanceAbsThreshold,
    min: 0,
    help: "prefix-cache: a worker holding a prompt's prefix is passed over (for a shorter match's holder, else the least loaded) when it would run more than this many requests in flight (scaled to its capacity) ...",
    origin: 'new',
  },
  balance_rel_threshold: {
    type: 'number',
    default: PREFIX_CACHE_DEFAULTS.balanceRelThreshold,
    min: 1,
    help: "... and more than this many times its share of the fleet's requests in flight (bounded load, relative to the mean, so a fleet busy everywhere keeps its prefixes where they are cached).",
    origin: 'new',
  },
  prefix_tree_max_chars: {
    type: 'int',
    default: PREFIX_CACHE_DEFAULTS.prefixTreeMaxChars,
    min: 64,
    help: 'prefix-cache: prompt characters remembered per worker; the least recently routed are forgotten beyond it.',
    origin: 'new',
  },
  session_load_factor: {
    type: 'number',
    default: SESSION_AFFINITY_DEFAULTS.sessionLoadFactor,
    min: 1,
    help: "session-affinity: a session's worker is skipped for the next on the hash ring when it has ceil(this x its share of the requests in flight, by capacity) requests.",
    origin: 'new',
  },
  prefix_hash_chars: {
    type: 'int',
    default: PREFIX_HASH_DEFAULTS.prefixHashChars,
    min: 1,
    help: 'prefix-hash: leading characters of the prompt hashed into its key (a shorter prompt is hashed whole); a request with a session key (prompt_cache_key, user field or x-session-id) routes on that instead.',
    origin: 'new',
  },
  prefix_hash_load_factor: {
    type: 'number',
    default: PREFIX_HASH_DEFAULTS.prefixHashLoadFactor,
    min: 1,
    help: "prefix-hash: a key's worker is skipped for the next on the hash ring when it has ceil(this x its share of the requests in flight, by capacity) requests. 1 keeps traffic that shares nothing about as even as least-connection; more keeps more prefixes on their worker.",
    origin: 'new',
  },
  engine_metrics_interval: {
    type: 'number',
    default: ENGINE_LOAD_DEFAULTS.engineMetricsInterval,
    min: 0.05,
    help: `engine-load: seconds between scrapes of each ready worker's /metrics; samples older than ${ENGINE_LOAD_DEFAULTS.staleIntervals} intervals count as unknown.`,
    origin: 'new',
  },
} as const satisfies Record<string, OptionSpec>;

export type OptionName = keyof typeof OPTIONS;

type ValueOf<S extends OptionSpec> = S['type'] extends 'int' | 'number'
  ? number
  : S['type'] extends 'bool'
    ? boolean
    : S['type'] extends 'list'
      ? string[]
      : S['type'] extends 'json'
        ? Record<string, unknown>
        : string;

type SnakeToCamel<S extends string> = S extends `${infer H}_${infer T}` ? `${H}${Capitalize<SnakeToCamel<T>>}` : S;

type HasDefault<S> = S extends { default: unknown } ? true : S extends { required: true } ? true : false;

/** The resolved configuration: every option with a default is present. */
export type Config = {
  readonly [K in OptionName as SnakeToCamel<K>]: HasDefault<(typeof OPTIONS)[K]> extends true
    ? ValueOf<(typeof OPTIONS)[K]>
    : ValueOf<(typeof OPTIONS)[K]> | undefined;
};

/** What the programmatic API accepts: any subset, with `skypilotTask` required. */
export type FlockServeOptions = Partial<Config> & { readonly skypilotTask: string };

export function camelName(name: string): string {
  return name.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

export function kebabName(name: string): string {
  return name.replaceAll('_', '-');
}

export function envName(name: string): string {
  return `FLOCKSERVE_${name.toUpperCase()}`;
}
