"""Whole runs: the CLI, a run killed with SIGKILL and resumed (same loss curve), DDP on 2 processes."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import TINY_OVERRIDES
from safetensors.torch import load_file

from depth_pose_ros import cli
from depth_pose_ros.pipeline.estimator import Estimator, EstimatorConfig
from depth_pose_ros.utils.paths import REPO_ROOT as REPO

RUN_OVERRIDES = [*TINY_OVERRIDES, "model.recurrent.hidden_channels=[16]",
                 "schedule.stages=[{name: flow, steps: 6, train: [encoder, recurrent, flow]}, {name: joint}]"]


def _losses(run: Path) -> dict[int, float]:
    """Loss per step; a step logged twice (redone after a resume) keeps its last value."""
    out = {}
    for line in (run / "losses.jsonl").read_text().splitlines():
        rec = json.loads(line)
        out[rec["step"]] = rec["loss"]
    return out


def test_cli_train_writes_a_usable_run_and_resumes_to_more_steps(tmp_path, capsys) -> None:
    run = tmp_path / "run"
    args = ["train", "--config", "cpu_smoke", "--run-dir", str(run), *RUN_OVERRIDES, "steps=3",
            "checkpoint.every=2", "log.tensorboard=true", "log.image_every=2", "log.every=1"]
    assert cli.main(args) == 0, capsys.readouterr().err
    for name in ("config.yaml", "losses.jsonl", "model.safetensors"):
        assert (run / name).is_file(), name
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step_00000002", "step_00000003"]
    assert any((run / "tb").iterdir())
    assert sorted(_losses(run)) == [1, 2, 3]
    est = Estimator.from_checkpoint(run / "model.safetensors", EstimatorConfig(height=64, width=96))
    assert est.model.cfg.encoder.width == 0.25
    assert cli.main(args[:-4] + ["steps=5"]) == 0  # auto-resume from step 3
    out = capsys.readouterr().out
    assert "resumed from" in out and "step_00000003" in out
    assert sorted(_losses(run)) == [1, 2, 3, 4, 5]
    bad = cli.main(args[:-4] + ["steps=6", "model.encoder.width=0.5"])
    err = capsys.readouterr().err
    assert bad == 1 and "does not match the configured architecture" in err


def _train_cmd(run: Path) -> list[str]:
    return [sys.executable, "-m", "depth_pose_ros.cli", "train", "--config", "cpu_smoke", "--run-dir", str(run),
            *RUN_OVERRIDES, "steps=12", "checkpoint.every=4", "checkpoint.keep_last=5"]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    return env


@pytest.mark.slow
def test_killed_run_resumes_with_the_same_losses(tmp_path) -> None:
    ref, killed = tmp_path / "ref", tmp_path / "killed"
    done = subprocess.run(_train_cmd(ref), cwd=REPO, env=_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]

    proc = subprocess.Popen(_train_cmd(killed), cwd=REPO, env=_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    log = killed / "losses.jsonl"
    deadline = time.time() + 240
    try:
        while time.time() < deadline and proc.poll() is None:
            if log.is_file() and len(log.read_text().splitlines()) >= 6:
                break
            time.sleep(0.02)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    n_before = len(log.read_text().splitlines())
    assert 6 <= n_before < 12, f"the kill should land mid-run, after the step-4 checkpoint ({n_before} steps)"

    resumed = subprocess.run(_train_cmd(killed), cwd=REPO, env=_env(), capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resumed from" in resumed.stdout
    lines = log.read_text().splitlines()
    assert len(lines) > 12  # some steps after the checkpoint were done twice
    a, b = _losses(ref), _losses(killed)
    assert sorted(a) == sorted(b) == list(range(1, 13))
    assert b == a  # exactly the same loss curve, redone steps included


@pytest.mark.slow
def test_ddp_two_processes_end_with_identical_parameters(tmp_path) -> None:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(REPO / "test" / "training" / "ddp_worker.py"), str(tmp_path)]
    done = subprocess.run(cmd, cwd=REPO, env=_env(), capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stderr[-3000:]
    info = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [i["world"] for i in info] == [2, 2] and info[0]["backend"] == "gloo"
    assert info[0]["step"] == info[1]["step"] == 20
    assert not set(info[0]["shard"]) & set(info[1]["shard"])  # each rank reads its own clips
    s0, s1 = load_file(str(tmp_path / "rank0.safetensors")), load_file(str(tmp_path / "rank1.safetensors"))
    assert s0.keys() == s1.keys()
    for k in s0:  # parameters and buffers (BatchNorm statistics are synced from rank 0 at the end)
        assert torch.equal(s0[k], s1[k]), k
    assert info[0]["last_loss"] != info[1]["last_loss"]  # different data, same model
    from depth_pose_ros.nets.model import build_model
    from training.config import load_train_config

    cfg = load_train_config(REPO / "training/configs/cpu_smoke.yaml",
                            [*TINY_OVERRIDES, "model.recurrent.hidden_channels=[16]"])
    torch.manual_seed(cfg.seed)
    init = build_model(cfg.model).state_dict()
    assert any(not torch.equal(init[k], s0[k]) for k in s0 if "weight" in k)  # it trained
    lines = (tmp_path / "run" / "losses.jsonl").read_text().splitlines()
    assert len(lines) == 20  # only rank 0 logs


@pytest.mark.data
def test_one_step_on_kitti_odometry_with_the_stereo_partner(kitti_odometry_dir, tmp_path) -> None:
    """Real data through open_source + ClipDataset: gray KITTI frames, stereo partner as an extra source."""
    from conftest import tiny_config

    from training.train import Trainer

    spec = f"{{spec: '{kitti_odometry_dir}', options: {{sequence: '06', frames: '0:8'}}}}"
    cfg = tiny_config("monodepth2", f"data.train=[{spec}]", "data.stereo=true", "data.height=64", "data.width=192",
                      "augment.enabled=false")
    tr = Trainer(cfg, tmp_path / "run", resume="never")
    batch = next(tr._batches())
    assert batch.images.shape == (2, 3, 3, 64, 192)  # gray repeated to the network's 3 channels
    assert batch.stereo_T[:, 0, 3].tolist() == pytest.approx([-0.537, -0.537], abs=2e-3)
    K = batch.K[0]
    assert float(K[0, 0]) == pytest.approx(707.0912 * 192 / 1226, rel=1e-5)  # calib.txt P0, scaled
    assert float(K[0, 2]) == pytest.approx((601.8873 + 0.5) * 192 / 1226 - 0.5, rel=1e-5)
    assert float(K[1, 2]) == pytest.approx((183.1104 + 0.5) * 64 / 370 - 0.5, rel=1e-5)
    result, grad_norm, applied = tr.train_step(batch)
    assert applied and torch.isfinite(result.total)
    views = tr.assembler.build_views(batch.images, batch.K, tr.model.forward_clip(batch.net_images),
                                     tr.cfg.losses.weights(), batch.stereo_images, batch.stereo_T)
    assert sum(v.stereo for v in views) == 1  # target 1: t-1, t+1 and the stereo partner
    tr.close()
