"""`depth-pose finetune`: a tiny end-to-end fine-tune on a few real frames, resumed, and its config."""
from __future__ import annotations

import json
import math

import pytest
import torch
from tiny_configs import tiny_config

from depth_pose_ros.cli import main
from depth_pose_ros.utils.paths import data_root
from training.finetune import SYNTHETIC_WORLDS, base_config, finetune_config, split_source
from training.train import train

INDOOR = data_root() / "indoor_handheld"
needs_indoor = pytest.mark.skipif(not INDOOR.is_dir(), reason="shared data indoor_handheld missing")
MEASURES = ("photometric", "depth_abs_rel_points", "flow_epe_dis")


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """A one-step tiny model folder (config.yaml + model.safetensors) to fine-tune from."""
    run_dir = tmp_path_factory.mktemp("tiny_base")
    train(tiny_config("synthetic_hour_teacher_flow", "steps=1"), run_dir)
    return run_dir


@needs_indoor
def test_split_holds_out_the_tail_and_finetune_config_mixes_synthetic_worlds(tiny_model):
    s = split_source("data:indoor_handheld", 0.2, frames="10:30")
    assert (s.num_frames, s.num_train, s.num_holdout) == (20, 16, 4)
    assert (s.train_frames, s.holdout_frames, s.image_size) == ("10:26", "26:30", (540, 960))
    base = base_config(tiny_model)
    cfg = finetune_config(base, [s], str(tiny_model / "model.safetensors"), minutes=5, synthetic_worlds=2,
                          extra_sizes=[[96, 160], [64, 96]])
    real, *synth = cfg.data.train
    assert (real.spec, real.options, real.width) == ("data:indoor_handheld", {"frames": "10:26"}, 384)
    assert [c.spec for c in synth] == [w.format(h=64, w=96) for w in SYNTHETIC_WORLDS[:2]]
    assert real.repeat == 10  # 600 synthetic frames vs 16 recorded ones: as many as allowed
    assert cfg.data.extra_sizes == [[96, 160]] and cfg.data.teacher.size_factor > 0
    assert cfg.losses.depth_supervised.weight == 1.0 and cfg.losses.depth_supervised.variance_focus == 0.85
    assert cfg.losses.rigid_flow_consistency.weight == 0 and cfg.losses.depth_teacher.weight > 0
    assert cfg.init_from.endswith("model.safetensors") and cfg.max_minutes == 5 and cfg.steps > 10**6
    with pytest.raises(ValueError, match="budget"):
        finetune_config(base, [s], "x")
    with pytest.raises(ValueError, match="too few"):
        split_source("data:indoor_handheld", 0.2, frames="0:4")


def test_bad_sources_are_clear_errors(tmp_path, capsys):
    rc = main(["finetune", str(tmp_path / "no_such_bag"), "--out", str(tmp_path / "m"), "--steps", "1"])
    assert rc == 1 and "source not found" in capsys.readouterr().err
    rc = main(["finetune", "synthetic:length=9", "--out", str(tmp_path / "m"), "--steps", "1"])
    assert rc == 1 and "fine-tuning is for recordings" in capsys.readouterr().err
    rc = main(["finetune", str(tmp_path), "--out", str(tmp_path / "m"), "--steps", "1"])  # an empty folder
    assert rc == 1 and "cannot tell what kind of source" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()


@needs_indoor
def test_finetune_writes_a_complete_model_folder_with_a_before_after_report_and_resumes(tiny_model, tmp_path):
    out, run_dir = tmp_path / "models" / "my_cam", tmp_path / "run"
    args = ["finetune", "data:indoor_handheld", "--frames", "0:10", "--from", str(tiny_model), "--out", str(out),
            "--run-dir", str(run_dir), "--synthetic", "0", "--teacher-cache", str(tmp_path / "teacher"),
            "--no-checks", "--set", "log.tensorboard=false", "--set", "eval.every=0"]
    assert main(args + ["--steps", "2"]) == 0
    assert {"model.safetensors", "config.yaml", "MODEL_CARD.md", "finetune_report.json"} <= \
        {p.name for p in out.iterdir()}
    assert (run_dir / "finetune.yaml").is_file() and any((tmp_path / "teacher").iterdir())
    report = json.loads((out / "finetune_report.json").read_text())
    (src,) = report["sources"]
    assert (src["train_frames"], src["holdout_frames"]) == ("0:8", "8:10")
    for label in ("before", "after"):
        res = src["report"][label]
        for key in MEASURES:
            assert res[key] is not None and math.isfinite(res[key]), (label, key, res)
        assert sum(res["pose_status"].values()) == 2
    assert report["training"]["steps"] == 2
    card = (out / "MODEL_CARD.md").read_text()
    assert card.count("metrics:begin") == 1 and "depth AbsRel at the triangulated points" in card
    assert card.index("## Standard checks") < card.index("metrics:begin")  # evaluate_model.py --card fills it

    from depth_pose_ros.nets.zoo import resolve_checkpoint
    from depth_pose_ros.pipeline.factory import build_estimator

    assert resolve_checkpoint(str(out)) == out / "model.safetensors"
    estimator, _ = build_estimator(str(out))
    assert estimator.network_size == (64, 96)

    # the model written is the default weight-space average of the start and the fine-tuned weights
    from safetensors.torch import load_file

    start, tuned, written = (load_file(p) for p in (tiny_model / "model.safetensors", run_dir / "model.safetensors",
                                                     out / "model.safetensors"))
    moved = [k for k in start if start[k].is_floating_point() and not torch.equal(start[k], tuned[k])]
    assert moved and report["training"]["blend"] == 0.5
    for k in start:
        expected = (0.5 * start[k].double() + 0.5 * tuned[k].double()).to(start[k].dtype) \
            if start[k].is_floating_point() else tuned[k]
        assert torch.equal(written[k], expected), k

    # the same command with a larger budget continues the run; --blend 1 writes the fine-tuned weights
    assert main(args + ["--steps", "3", "--blend", "1"]) == 0
    report = json.loads((out / "finetune_report.json").read_text())
    assert report["training"]["steps"] == 3 and report["training"]["resumed_from"]
    tuned, written = load_file(run_dir / "model.safetensors"), load_file(out / "model.safetensors")
    assert all(torch.equal(written[k], tuned[k]) for k in tuned)
    assert main(args + ["--steps", "3", "--blend", "1.5"]) == 1  # a clear error (ValueError), nothing trained
