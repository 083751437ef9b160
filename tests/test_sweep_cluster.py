"""A sweep on a real Dask cluster: ``distributed.LocalCluster``, 2 worker processes of 1 thread.

Checks that runs trained on the workers are bit for bit the runs trained by the local pool,
that a worker killed mid-stack leaves no broken cache entry (its stack trains again on the
restarted worker) and that a stack that keeps failing is named while the finished runs stay
cached. Quick mode: the stratified subset, 2 epochs.
"""

import os
import re
from pathlib import Path

import pytest
import torch

from fmnist_helpers import planner
from fmnist_helpers.cluster import ClusterError, DaskCluster, stack_label
from fmnist_helpers.results import artifacts_path, cache_path, resolve
from fmnist_helpers.settings import settings
from fmnist_helpers.sweep import Sweep, run_sweep

distributed = pytest.importorskip("distributed", reason="needs the cluster extra: "
                                  "pip install '.[cluster]'")

pytestmark = pytest.mark.slow  # starting the cluster's processes: about 45 s for the module
SWEEP = Sweep("cluster", {"lr": [0.02, 0.1], "depth": [3, 4]}, 2)


@pytest.fixture(scope="module")
def client():
    """A LocalCluster of 2 worker processes (1 thread each) and its client."""
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        yield client


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    """The sweep trained here, by the local pool, into a cache of its own."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FMNIST_RESULTS_DIR", str(tmp_path_factory.mktemp("local")))
        mp.setenv("FMNIST_PROGRESS", "0")
        return run_sweep(SWEEP, settings(quick=True))


def on_cluster(client, sweep: Sweep = SWEEP):
    return planner.train_runs(sweep.runs(), settings(quick=True), executor=DaskCluster(client))


def assert_same_runs(ours, theirs) -> None:
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs, strict=True):
        assert (a.experiment, a.seed) == (b.experiment, b.seed)
        assert a.history.rows == b.history.rows  # every float, bit for bit
        assert torch.equal(a.predictions, b.predictions)
        for (k, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
            assert torch.equal(x, y), k


def assert_cache_whole(folder: Path, runs: int) -> None:
    """Every JSON entry has its arrays; no temporary file is left."""
    entries = list(folder.rglob("*.json"))
    assert len(entries) == runs
    assert all(artifacts_path(e).is_file() for e in entries)
    assert not list(folder.rglob("*.part"))


def test_runs_on_the_cluster_are_the_local_runs_bit_for_bit(client, local, tmp_path):
    remote = on_cluster(client)
    assert_same_runs(remote, local)
    assert_cache_whole(tmp_path / "results", len(SWEEP.runs()))
    for r in remote:  # cached here, loaded back the same
        path = cache_path(r.experiment, r.seed, True, "cpu")
        assert path.is_file()
    assert_same_runs(run_sweep(SWEEP, settings(quick=True)), local)  # now from the cache
    assert len(list((tmp_path / "results").rglob("*.json"))) == len(SWEEP.runs())


class KillOnce(distributed.WorkerPlugin):
    """Test only: the first stack to finish an epoch, anywhere, kills its worker process."""

    def __init__(self, marker: str):
        self.marker = marker

    def setup(self, worker) -> None:
        original, marker = planner.train_stack, Path(self.marker)

        def train_stack(shape, members, data, *, on_snapshot=None, **options):
            def snapshot(j, history, snap):
                on_snapshot(j, history, snap)
                if not marker.exists():
                    marker.touch()
                    os._exit(1)  # the worker dies mid-stack, as a machine would

            return original(shape, members, data, on_snapshot=snapshot, **options)

        planner.train_stack = train_stack


class FailFor(distributed.WorkerPlugin):
    """Test only: every stack holding the named experiment raises."""

    def __init__(self, name: str):
        self.name = name

    def setup(self, worker) -> None:
        original, name = planner._train_one_stack, self.name
        self.original = original

        def train_one_stack(stack, *args, **options):
            if any(e.name == name for t in stack for e in t.runs):
                raise RuntimeError(f"no memory for {name}")
            return original(stack, *args, **options)

        planner._train_one_stack = train_one_stack

    def teardown(self, worker) -> None:
        planner._train_one_stack = self.original


def test_a_worker_killed_mid_stack_leaves_no_broken_entry(client, local, tmp_path):
    marker = tmp_path / "killed"
    client.register_plugin(KillOnce(str(marker)), name="kill-once")
    try:
        remote = on_cluster(client)
    finally:
        client.unregister_worker_plugin("kill-once")
    assert marker.exists()  # a worker did die
    assert_same_runs(remote, local)
    assert_cache_whole(tmp_path / "results", len(SWEEP.runs()))
    client.wait_for_workers(2, timeout=60)


def test_a_failing_stack_is_named_and_the_others_are_kept(client, local, tmp_path):
    doomed = SWEEP.experiment({"lr": 0.02, "n_linear": 4})
    client.register_plugin(FailFor(doomed.name), name="fail-for")
    try:
        with pytest.raises(ClusterError) as failure:
            on_cluster(client)
    finally:
        client.unregister_worker_plugin("fail-for")
    message = str(failure.value)
    assert "failed on the cluster (each tried 2 times)" in message
    assert f"no memory for {doomed.name}" in message
    named = [line.split(";")[1] for line in message.splitlines()[1:]
             if doomed.name in line.split(";")[0]]  # "cluster_lr0.02_d4, ...; seed 1 (2 runs)"
    said = {int(s) for line in named for s in re.findall(r"\d+", line.split("(")[0])}
    assert said == set(SWEEP.seeds)  # every stack that holds it is named, with its seeds
    quick = settings(quick=True)
    apart = [(e, s) for e, s in SWEEP.runs() if e.n_linear == 3]  # another shape, other stacks
    for e, s in apart:
        assert cache_path(resolve(e, quick), s, True, "cpu").is_file()
    for s in SWEEP.seeds:
        assert not cache_path(resolve(doomed, quick), s, True, "cpu").exists()
    assert_cache_whole(tmp_path / "results", len(list((tmp_path / "results").rglob("*.json"))))
    assert_same_runs(on_cluster(client), local)  # the same command again trains what is missing


def test_a_scheduler_that_is_not_there_is_named():
    with pytest.raises(ClusterError, match="cannot reach the Dask scheduler at "
                                           "'tcp://127.0.0.1:9'.*dask scheduler"):
        DaskCluster("tcp://127.0.0.1:9").client  # noqa: B018 - connecting is the point


def test_stack_label_names_experiments_and_seeds():
    stacks = planner.plan(SWEEP.runs())
    labels = [stack_label(s) for s in stacks]
    assert any("shallow" in label and "seeds 0, 1" in label for label in labels)
