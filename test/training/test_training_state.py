"""Training checkpoints: round trip, atomic writes, keep-last-N, architecture checks, NaN guard."""
from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch
from conftest import tiny_config

from depth_pose_ros.nets.checkpoint import CheckpointError
from training.state import (
    TrainerState,
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    save_checkpoint,
)
from training.train import NonFiniteLossError, Trainer


def _trainer(tmp_path, name: str = "cpu_smoke_monodepth2", *extra: str) -> Trainer:
    return Trainer(tiny_config(name, *extra), tmp_path, resume="auto")


def test_round_trip_restores_model_optimizer_rng_and_counters(tmp_path) -> None:
    tr = _trainer(tmp_path / "run")
    batch = next(tr._batches())
    for _ in range(2):
        tr.train_step(batch)
    tr.state.epoch, tr.state.position = 3, 4
    random.seed(11)
    np.random.seed(12)
    torch.manual_seed(13)
    path = tr.save()
    expected_rng = (random.random(), float(np.random.rand()), float(torch.rand(1)))
    assert path.name == "step_00000002"
    files = json.loads((path / "manifest.json").read_text())["files"]
    assert set(files) == {"model.safetensors", "optimizer.safetensors", "rng.safetensors", "trainer.json",
                          "config.yaml"}

    tr2 = _trainer(tmp_path / "run")  # auto-resume
    assert tr2.resumed_from == path
    assert (tr2.state.step, tr2.state.epoch, tr2.state.position) == (2, 3, 4)
    for (n, p), (_, q) in zip(tr.model.state_dict().items(), tr2.model.state_dict().items()):
        assert torch.equal(p, q), n
    s1, s2 = tr.optimizer.state_dict(), tr2.optimizer.state_dict()
    assert s1["param_groups"][0]["lr"] == s2["param_groups"][0]["lr"]
    for pid, st in s1["state"].items():
        for k, v in st.items():
            assert torch.equal(v, s2["state"][pid][k]), (pid, k)
    assert (random.random(), float(np.random.rand()), float(torch.rand(1))) == expected_rng
    # the next step is identical for both trainers
    r1, _, _ = tr.train_step(batch)
    r2, _, _ = tr2.train_step(batch)
    assert float(r1.total.detach()) == float(r2.total.detach())
    tr.close()
    tr2.close()


def test_a_crash_during_save_leaves_no_partial_checkpoint(tmp_path) -> None:
    tr = _trainer(tmp_path / "run")
    first = tr.save()
    tr.state.step = 7

    def crash(tmp_dir):
        assert (tmp_dir / "manifest.json").is_file()  # the complete data existed, under a temporary name
        raise KeyboardInterrupt("simulated kill")

    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(tr.checkpoint_root, tr.model, tr.optimizer, tr.state, tr.cfg.to_yaml(), _before_rename=crash)
    assert list_checkpoints(tr.checkpoint_root) == [first]
    assert latest_checkpoint(tr.checkpoint_root) == first
    assert any(p.name.startswith(".tmp-") for p in tr.checkpoint_root.iterdir())
    tr.save()  # the next save removes the leftover
    assert not any(p.name.startswith(".tmp-") for p in tr.checkpoint_root.iterdir())
    tr.close()


def test_incomplete_checkpoint_directories_are_skipped(tmp_path) -> None:
    tr = _trainer(tmp_path / "run")
    good = tr.save()
    fake = tr.checkpoint_root / "step_00000099"
    fake.mkdir()
    (fake / "model.safetensors").write_bytes(b"half")
    assert latest_checkpoint(tr.checkpoint_root) == good
    with pytest.raises(CheckpointError, match="incomplete"):
        load_checkpoint(fake, tr.model)
    truncated = tr.checkpoint_root / "step_00000098"
    import shutil

    shutil.copytree(good, truncated)
    (truncated / "optimizer.safetensors").write_bytes(b"x")  # size differs from the manifest
    assert latest_checkpoint(tr.checkpoint_root) == good
    tr.close()


def test_keep_last_n(tmp_path) -> None:
    tr = _trainer(tmp_path / "run", "cpu_smoke_monodepth2", "checkpoint.keep_last=2")
    for step in (1, 2, 3, 4):
        tr.state.step = step
        tr.save()
    assert [p.name for p in list_checkpoints(tr.checkpoint_root)] == ["step_00000003", "step_00000004"]
    assert [p.name for p in tr.checkpoint_root.iterdir()] != []
    assert all(not p.name.startswith(".tmp-") for p in tr.checkpoint_root.iterdir())
    tr.close()


def test_resume_with_another_architecture_fails_clearly(tmp_path) -> None:
    tr = _trainer(tmp_path / "run")
    tr.save()
    tr.close()
    with pytest.raises(CheckpointError) as info:
        _trainer(tmp_path / "run", "cpu_smoke_monodepth2", "model.encoder.width=0.5")
    msg = str(info.value)
    assert "cannot resume" in msg and "encoder.width: 0.25 -> 0.5" in msg and "config.yaml" in msg


def test_no_resume_refuses_an_existing_run(tmp_path) -> None:
    tr = _trainer(tmp_path / "run")
    tr.save()
    tr.close()
    from depth_pose_ros.utils.config import ConfigError

    with pytest.raises(ConfigError, match="already holds checkpoints"):
        Trainer(tiny_config("cpu_smoke_monodepth2"), tmp_path / "run", resume="never")


def test_trainer_state_json_round_trip() -> None:
    s = TrainerState(step=5, epoch=1, position=8, nan_skipped=2, nan_consecutive=1, extra={"a": 1})
    assert TrainerState(**json.loads(json.dumps(s.to_dict()))) == s


class _NanAt(Trainer):
    """A trainer whose loss is NaN at the given steps (a fault injected around the real loss)."""

    nan_steps: set[int] = set()

    def compute_loss(self, batch, weights, generator, want_maps):
        result = super().compute_loss(batch, weights, generator, want_maps)
        if self.state.step in self.nan_steps:
            result.total = result.total * float("nan")
        return result


def test_nan_guard_skips_the_update_and_stops_after_k_in_a_row(tmp_path) -> None:
    cfg = tiny_config("cpu_smoke_monodepth2", "nan_guard.max_consecutive=3", "steps=8")
    _NanAt.nan_steps = {1, 3, 4}
    tr = _NanAt(cfg, tmp_path / "run", resume="never")
    batch = next(tr._batches())
    tr.train_step(batch)  # step 0: fine
    before = {n: p.detach().clone() for n, p in tr.model.named_parameters()}
    opt_steps = [int(s["step"]) for s in tr.optimizer.state_dict()["state"].values()][:1]
    _, grad_norm, applied = tr.train_step(batch)  # step 1: NaN -> skipped
    assert not applied and not np.isfinite(grad_norm)
    assert all(torch.equal(p, before[n]) for n, p in tr.model.named_parameters())
    assert [int(s["step"]) for s in tr.optimizer.state_dict()["state"].values()][:1] == opt_steps
    assert (tr.state.nan_skipped, tr.state.nan_consecutive) == (1, 1)
    _, _, applied = tr.train_step(batch)  # step 2 fine: the run of NaNs is reset
    assert applied and tr.state.nan_consecutive == 0
    tr.train_step(batch)  # 3: NaN
    tr.train_step(batch)  # 4: NaN
    _NanAt.nan_steps = {1, 3, 4, 5}
    with pytest.raises(NonFiniteLossError, match="3 consecutive steps"):
        tr.train_step(batch)  # 5: third in a row -> stop
    assert tr.state.nan_skipped == 4
    tr.close()


def test_nan_guard_through_the_command_line_exit_code(tmp_path, monkeypatch, capsys) -> None:
    """The CLI reports the guard's message and exits 3 (a real non-finite loss: lr = inf)."""
    from depth_pose_ros import cli

    args = ["train", "--config", "cpu_smoke_monodepth2", "--run-dir", str(tmp_path / "run"),
            *[o for o in __import__("conftest").TINY_OVERRIDES], "steps=6", "optim.lr=.inf",
            "optim.grad_clip=0", "nan_guard.max_consecutive=2"]
    code = cli.main(args)
    err = capsys.readouterr().err
    assert code == 3, err
    assert "consecutive steps with a non-finite loss" in err


def test_max_minutes_stops_early_saves_and_counts_time_over_resumes(tmp_path) -> None:
    """A wall-clock budget ends the run with a final checkpoint; a resume sees the time already spent."""
    run = tmp_path / "run"
    tr = Trainer(tiny_config("cpu_smoke_monodepth2", "steps=1000", "max_minutes=0.0001", "eval.every=0"),
                 run, resume="auto")
    summary = tr.run()
    tr.close()
    assert 1 <= summary.step < 1000, "the 6 ms budget must stop the run after its first step(s)"
    assert (run / "model.safetensors").exists()
    spent = tr.state.train_seconds
    assert spent >= 0.006
    again = Trainer(tiny_config("cpu_smoke_monodepth2", "steps=1000", "max_minutes=0.0001", "eval.every=0"),
                    run, resume="auto")
    assert again.state.train_seconds == pytest.approx(spent)
    assert again.run().step == summary.step, "budget already spent: a resume must not train further"
    again.close()
