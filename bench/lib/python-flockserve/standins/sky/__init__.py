"""STAND-IN for SkyPilot's Python API (`import sky`), for benchmarking the original Python
FlockServe only. It is NOT SkyPilot and talks to no cloud: it answers the calls the Python
FlockServe's workermanager makes (Task.from_yaml, launch, status, queue, cancel, down) with
the arguments and return shapes of SkyPilot's API, and "launches" a cluster at once by giving it
the next free address of a fixed list of workers that are already running.

  STANDIN_SKY_HOSTS       comma-separated worker addresses (e.g. 127.0.0.2,127.0.0.3), one per cluster
  STANDIN_SKY_STATE_DIR   where launched clusters are kept (one JSON file each): launch runs in a
                          child process of the gateway, status in the gateway itself
"""

import enum
import fcntl
import json
import os

import yaml


class ClusterStatus(enum.Enum):
    INIT = "INIT"
    UP = "UP"
    STOPPED = "STOPPED"


class JobStatus(enum.Enum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    CANCELLED = "CANCELLED"


class Resources:
    def __init__(self, ports=None):
        self.ports = [str(p) for p in (ports if isinstance(ports, list) else [ports] if ports else [])]


class Task:
    def __init__(self, name=None, run=None, setup=None, resources=None):
        self.name = name
        self.run = run
        self.setup = setup
        self.resources = {resources or Resources()}

    @staticmethod
    def from_yaml(path):
        with open(os.path.expanduser(path)) as f:
            config = yaml.safe_load(f) or {}
        resources = config.get("resources") or {}
        return Task(
            name=config.get("name"),
            run=config.get("run"),
            setup=config.get("setup"),
            resources=Resources(ports=resources.get("ports")),
        )


class ResourceHandle:
    """The fields of SkyPilot's CloudVmRayResourceHandle that callers read."""

    def __init__(self, cluster_name, head_ip):
        self.cluster_name = cluster_name
        self.head_ip = head_ip


def _state_dir():
    d = os.environ.get("STANDIN_SKY_STATE_DIR")
    if not d:
        raise RuntimeError("stand-in sky: STANDIN_SKY_STATE_DIR is not set")
    os.makedirs(os.path.join(d, "clusters"), exist_ok=True)
    return d


def _cluster_path(name):
    return os.path.join(_state_dir(), "clusters", f"{name}.json")


def _clusters():
    d = os.path.join(_state_dir(), "clusters")
    out = []
    for entry in sorted(os.listdir(d)):
        if entry.endswith(".json"):
            with open(os.path.join(d, entry)) as f:
                out.append(json.load(f))
    return out


def launch(task, cluster_name=None, retry_until_up=False, detach_run=False, **_):
    """Gives the cluster the first worker address no other cluster has; (job_id, handle) as SkyPilot."""
    hosts = [h for h in os.environ.get("STANDIN_SKY_HOSTS", "").split(",") if h]
    with open(os.path.join(_state_dir(), "lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        clusters = {c["name"]: c for c in _clusters()}
        if cluster_name not in clusters:
            used = {c["head_ip"] for c in clusters.values()}
            free = [h for h in hosts if h not in used]
            if not free:
                raise RuntimeError(f"stand-in sky: no free worker address for {cluster_name} (STANDIN_SKY_HOSTS={hosts})")
            tmp = _cluster_path(cluster_name) + ".tmp"
            with open(tmp, "w") as f:
                json.dump({"name": cluster_name, "head_ip": free[0]}, f)
            os.replace(tmp, _cluster_path(cluster_name))
            clusters[cluster_name] = {"name": cluster_name, "head_ip": free[0]}
    c = clusters[cluster_name]
    return 1, ResourceHandle(c["name"], c["head_ip"])


def status(cluster_names=None, refresh=False, **_):
    names = [cluster_names] if isinstance(cluster_names, str) else cluster_names
    return [
        {"name": c["name"], "status": ClusterStatus.UP, "handle": ResourceHandle(c["name"], c["head_ip"])}
        for c in _clusters()
        if names is None or c["name"] in names
    ]


def queue(cluster_name, skip_finished=False, all_users=False, **_):
    if not status(cluster_name):
        raise ValueError(f"Cluster {cluster_name!r} does not exist.")
    return [{"job_id": 1, "job_name": "task", "status": JobStatus.RUNNING}]


def cancel(cluster_name, all=False, job_ids=None, **_):
    if not status(cluster_name):
        raise ValueError(f"Cluster {cluster_name!r} does not exist.")


def down(cluster_name, purge=False, **_):
    try:
        os.remove(_cluster_path(cluster_name))
    except FileNotFoundError:
        if not purge:
            raise ValueError(f"Cluster {cluster_name!r} does not exist.")
