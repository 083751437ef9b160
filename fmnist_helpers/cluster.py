"""Training the planner's stacks on a Dask cluster: :class:`DaskCluster`, an executor.

The planner (:mod:`fmnist_helpers.planner`) hands its stacks to an executor; this one sends
each stack to a worker of a `Dask distributed <https://distributed.dask.org>`_ cluster. The
dataset travels to each worker once (``client.scatter(..., broadcast=True)``); a worker trains
a whole stack with the engine, writes nothing, and sends the results (histories, predictions and
weights) back to the process that asked, which caches them, the arrays before the JSON entry.
So the workers need no shared disk, and a worker that dies mid-stack leaves no cache entry: its
stack trains again elsewhere (Dask reschedules it); a stack that raises is tried once more, then
named in the error, the stacks that finished staying cached.

A run trained on a worker is bit for bit the run trained here when the worker's CPU arithmetic
(:mod:`fmnist_helpers.kernels`) and PyTorch are the same: both are checked before anything is
sent, since both are part of the cache key. Needs the ``cluster`` extra
(``pip install .[cluster]``: ``dask`` and ``distributed``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import torch

from . import kernels, planner
from .data import FashionMNIST
from .results import CACHE_VERSION, Result, artifacts_path, cache_path, get_data, write_atomic
from .settings import Settings

RETRIES = 1  # a stack that raises on a worker is tried once more before it is reported
EVERY = 25  # batches per progress message from a worker


class ClusterError(RuntimeError):
    """The cluster cannot train the runs as this process would, or some stacks failed."""


def _client_for(address):
    try:
        from distributed import Client
    except ImportError:
        raise ClusterError("training on a Dask cluster needs dask and distributed: "
                           "pip install '.[cluster]' (or pip install dask distributed)") from None
    if not isinstance(address, str):
        return address, False  # a Client the caller made (and closes)
    try:
        return Client(address, timeout="20s"), True
    except (OSError, TimeoutError) as e:
        raise ClusterError(f"cannot reach the Dask scheduler at {address!r} ({e}); start one "
                           "with `dask scheduler` and workers with `dask worker ADDRESS "
                           "--nthreads 1`, or leave --scheduler/FMNIST_SCHEDULER unset to "
                           "train on this machine") from None


def worker_facts() -> dict:
    """What must match between a worker and this process for its runs to share the cache."""
    return {"torch": torch.__version__, "kernels": kernels.in_force(),
            "cache_version": CACHE_VERSION}


def stack_label(stack: list[planner.Trajectory]) -> str:
    """A stack in words, for progress and errors: "shallow, dropout; seeds 0, 1 (4 runs)"."""
    names = list(dict.fromkeys(e.name for t in stack for e in t.runs))
    seeds = sorted({t.seed for t in stack})
    runs = sum(len(t.runs) for t in stack)
    return (f"{', '.join(names)}; seed{'s' * (len(seeds) > 1)} "
            f"{', '.join(map(str, seeds))} ({runs} run{'s' * (runs > 1)})")


def store(result: Result, config: Settings) -> Path:
    """Cache a result that came back from a worker: the arrays first, then the JSON entry
    that names them (each written atomically); return the entry's path."""
    path = cache_path(result.experiment, result.seed, config.quick, config.device.type)
    if result.artifacts is not None:
        result.artifacts.save(artifacts_path(path))
    write_atomic(path, result.to_dict())
    return path


class _WorkerProgress:
    """The progress bar's interface on a worker: epochs of training sent as Dask events."""

    def __init__(self, topic: str):
        from distributed import get_worker

        self.worker, self.topic = get_worker(), topic

    def batch(self, step: int, steps: int, models: int) -> None:
        since = step % EVERY
        if since == 0 or step == steps:
            self.advance(models * (since or EVERY) / steps)

    def advance(self, epochs: float) -> None:
        self.worker.log_event(self.topic, epochs)

    def run_done(self) -> None:
        """Runs are counted where they are cached, in the process that asked."""


def train_on_worker(stack: list[planner.Trajectory], config: Settings, data: FashionMNIST,
                    topic: str) -> list[Result]:
    """A Dask task: train one stack with the engine, cache nothing, return its results (their
    predictions and weights in memory, sent back with them)."""
    trained = planner._train_one_stack(stack, config, False, _WorkerProgress(topic), data)
    return list(trained.values())


class DaskCluster:
    """An executor for :func:`fmnist_helpers.planner.train_runs`: stacks train on a Dask
    cluster, results are cached here.

    ``address``: the scheduler (``"tcp://host:8786"``), or a ``distributed.Client`` already
    connected (a ``LocalCluster``'s, in the tests); ``retries``: tries more for a stack that
    raises on a worker.
    """

    def __init__(self, address, retries: int = RETRIES):
        self.address, self.retries = address, retries
        self._client = None

    @property
    def client(self):
        """The connected ``distributed.Client`` (connects on first use)."""
        if self._client is None:
            self._client, self._owned = _client_for(self.address)
        return self._client

    def close(self) -> None:
        """Disconnect, when this executor made the connection."""
        if self._client is not None and self._owned:
            self._client.close()
        self._client = None

    def workers(self, config: Settings, stacks: int) -> int:
        """The cluster's worker threads: the plan cuts long stacks into that many parts."""
        return max(1, sum(self.client.nthreads().values()))

    def check_workers(self, config: Settings) -> None:
        """Refuse a cluster whose runs would not be this process's runs, bit for bit."""
        here = worker_facts()
        if config.device.type != "cpu":
            here.pop("kernels")
        facts = self.client.run(worker_facts)
        if not facts:
            raise ClusterError(f"the Dask scheduler at {self.address!r} has no workers yet: "
                               "start some with `dask worker ADDRESS --nthreads 1`")
        for worker, theirs in facts.items():
            differ = [f"{k} {theirs[k]!r} there, {v!r} here" for k, v in here.items()
                      if theirs[k] != v]
            if differ:
                raise ClusterError(
                    f"worker {worker} would not train the same numbers as this process: "
                    f"{'; '.join(differ)}. Install the same PyTorch and start the workers "
                    "with the same FMNIST_KERNELS (portable on every x86-64 CPU).")

    def train(self, stacks: list[list[planner.Trajectory]], config: Settings, cache: bool,
              progress) -> Iterator[dict[Path, Result]]:
        """Send every stack to the cluster; cache and yield each one's results as it comes
        back. Raises :class:`ClusterError` naming the stacks that failed, after the others."""
        from distributed import as_completed

        client = self.client
        self.check_workers(config)
        topic = f"fmnist-progress-{uuid.uuid4().hex}"
        client.subscribe_topic(topic, lambda event: progress.advance(event[1]))
        data = client.scatter(get_data(config.quick), broadcast=True, hash=False)
        futures = {client.submit(train_on_worker, stack, config, data, topic,
                                 key=f"fmnist-stack-{uuid.uuid4().hex[:12]}",
                                 retries=self.retries, pure=False): stack
                   for stack in stacks}
        failed = []
        try:
            for future in as_completed(futures):
                stack = futures.pop(future)
                try:
                    results = future.result()
                except Exception as e:  # noqa: BLE001 - reported below, by stack
                    failed.append(f"{stack_label(stack)}: {type(e).__name__}: {e}")
                    continue
                out = {}
                for result in results:
                    path = store(result, config) if cache else cache_path(
                        result.experiment, result.seed, config.quick, config.device.type)
                    out[path] = result
                    progress.run_done()
                yield out
        finally:
            client.unsubscribe_topic(topic)
            for future in futures:
                future.cancel()
        if failed:
            raise ClusterError(
                f"{len(failed)} stack{'s' * (len(failed) > 1)} failed on the cluster (each "
                f"tried {self.retries + 1} times); the runs that finished are cached, and "
                "the same command again trains only what is missing:\n  "
                + "\n  ".join(failed))
