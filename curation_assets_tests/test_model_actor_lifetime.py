"""Model actors outlive a run that another run still uses, and go when nobody uses them.

On a real two-node local Ray cluster: a second process (standing in for a run the daemon
launched) holds the aesthetics model actor while a `curation-assets run --engine ray` on
the same cluster starts, uses that very actor, and ends. The CLI's end must release its own
actors and keep the held one, still serving the other process from the same load; killing
that process (no release) ends its lease after the lease TTL, and the actor then exits
after the idle time. A process that releases explicitly frees its actor at once.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cluster_fixtures import deployment_env, ray_cluster  # noqa: F401 (fixtures)
from curation_assets.cli import main
from curation_assets.samples.synthetic import write_moving_pattern

pytestmark = pytest.mark.slow
REPO_ROOT = Path(__file__).resolve().parents[1]
LEASE_TTL_S, IDLE_S = "15", "1"  # short, so the test sees the reaping rule; defaults 60 and 600

# the other "run": holds the aesthetics actor (the same loader and settings the image_scores step uses)
OTHER_RUN = """
import json, sys
import numpy as np
from curation_assets.execution import model_actors
from curation_assets.models.aesthetics import load_aesthetic_scorer
from curation_assets.orchestration.resources import ModelResource

scorer = model_actors.load_model(load_aesthetic_scorer, ModelResource().settings())
print(json.dumps(scorer.placement()), flush=True)
for line in sys.stdin:
    image = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    print(json.dumps([float(x) for x in scorer.score([image])]), flush=True)
"""


def _model_actors() -> set[str]:
    import ray

    return {a["name"] for a in ray.util.list_named_actors(all_namespaces=True) if a["name"].startswith("curation-model:")}


def _wait_until(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not after {timeout:.0f} s")
        time.sleep(0.5)


def test_a_run_ending_keeps_the_actor_another_run_holds(ray_cluster, isolated_env, deployment_env, tmp_path,
                                                         monkeypatch, capsys):
    import ray

    from curation_assets.execution import model_actors

    monkeypatch.setenv("CURATION_RAY_LEASE_TTL_S", LEASE_TTL_S)
    monkeypatch.setenv("CURATION_RAY_MODEL_IDLE_S", IDLE_S)
    env = {**os.environ, "CURATION_ENGINE": "ray", "CURATION_RAY_ADDRESS": ray_cluster.address,
           "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])}
    other = subprocess.Popen([sys.executable, "-c", OTHER_RUN], cwd=REPO_ROOT, env=env, text=True,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        placement = json.loads(other.stdout.readline() or "null")
        assert placement, "the other run could not load its model"
        held = placement["actor"]

        videos = tmp_path / "videos"
        videos.mkdir()
        for i in range(2):
            write_moving_pattern(videos / f"clip_{i}.mp4", shift_px_per_frame=(1 + i, 0), seed=i, n_frames=24)
        code = main(["run", "--input", str(videos), "--workers", "1", "--no-outputs", "--engine", "ray",
                     "--ray-address", ray_cluster.address])
        out = capsys.readouterr().out
        assert code == 0, out
        lines = [line for line in out.splitlines() if line.startswith("Ray model actor ")]
        print("\n".join(lines))
        # the CLI used the held actor (the same load) and kept it; its other actors went at once
        assert any(line.startswith(f"Ray model actor {held}:") and line.endswith("kept: in use by 1 other run(s)")
                   for line in lines), out
        assert sum(line.endswith(", released") for line in lines) == len(lines) - 1 >= 2, out
        assert _model_actors() == {held}

        stats = model_actors.actor_stats()[held]
        assert stats["pid"] == placement["pid"] and stats["calls"] >= 1  # the CLI scored with the same load
        other.stdin.write("score\n")
        other.stdin.flush()
        scores = json.loads(other.stdout.readline() or "null")
        assert scores and len(scores) == 1, "the other run lost its model when the CLI run ended"
        assert model_actors.actor_stats()[held]["calls"] == stats["calls"] + 1  # still the one load

        # the other run dies without releasing: its lease lapses (TTL), then the idle rule reaps
        os.kill(other.pid, signal.SIGKILL)
        other.wait(timeout=30)
        _wait_until(lambda: not _model_actors(), 4 * float(LEASE_TTL_S) + 30, "actor reaped after its holder died")
    finally:
        if other.poll() is None:
            other.kill()
            other.wait(timeout=30)

    # a holder that releases frees the actor at once (this test process as the only holder)
    monkeypatch.setenv("CURATION_ENGINE", "ray")
    monkeypatch.setenv("CURATION_RAY_ADDRESS", ray_cluster.address)
    from curation_assets.models.aesthetics import load_aesthetic_scorer
    from curation_assets.orchestration.resources import ModelResource

    model_actors.load_model(load_aesthetic_scorer, ModelResource().settings())
    assert len(_model_actors()) == 1
    released = model_actors.release_models()
    assert [a["released"] for a in released] == [True]
    assert not _model_actors()
    assert ray.is_initialized()


def test_a_closing_actor_refuses_leases_and_a_new_one_starts(ray_cluster, deployment_env, monkeypatch):
    """The instant between another run deciding to close an actor and killing it: a run asking
    for the model then must get a fresh actor, never the dying one. (`dict` is the loader: any
    importable callable is a model here.)"""
    import threading

    import ray

    from curation_assets.execution import model_actors

    monkeypatch.setenv("CURATION_ENGINE", "ray")
    monkeypatch.setenv("CURATION_RAY_ADDRESS", ray_cluster.address)
    first = model_actors.load_model(dict)
    handle = ray.get_actor(first.placement()["actor"], namespace=model_actors.NAMESPACE)
    closing = ray.get(handle.release.remote(model_actors.lease_holder(), True))
    assert closing["closing"] and closing["held"]  # closed, not yet killed
    assert ray.get(handle.acquire.remote("another-run")) is None  # no new lease on a closing actor
    killer = threading.Timer(1.0, lambda: ray.kill(handle, no_restart=True))
    killer.start()
    second = model_actors.load_model(dict)  # waits out the dying actor, then starts a fresh one
    killer.join()
    assert second.placement()["pid"] != first.placement()["pid"]
    assert model_actors.actor_stats()[second.placement()["actor"]]["holders"] == [model_actors.lease_holder()]
    assert [a["released"] for a in model_actors.release_models()] == [True]

    # a loader that fails reads as its own error, at once (no retry loop)
    with pytest.raises(model_actors.RayStepError, match=r"loading int in a Ray actor failed: ValueError: invalid literal for int\(\)"):
        model_actors.load_model(int, "not a number")
