"""Periodic held-out evaluation: metrics of the streamed network, written to eval.jsonl."""
from __future__ import annotations

import json

import numpy as np
import torch
from conftest import tiny_config

from depth_pose_ros.nets.model import build_model
from training.config import SourceConfig
from training.periodic_eval import evaluate, load_heldout
from training.train import Trainer

SPEC = "synthetic:seed=7,length=4,height=64,width=96"


def test_heldout_metrics_of_a_model_with_flow_and_posenet() -> None:
    data = load_heldout(SourceConfig(spec=SPEC), 64, 96, 3, max_frames=4)
    assert data.images.shape == (4, 3, 64, 96) and data.gt_flow.shape == (3, 2, 64, 96)
    torch.manual_seed(0)
    model = build_model(tiny_config("glnet").model)
    model.train()
    m = evaluate(model, data)
    assert model.training  # mode restored
    for key in ("depth_abs_rel", "depth_delta1", "depth_abs_rel_constant", "flow_epe", "flow_epe_zero",
                "rot_err_deg_identity", "posenet_rot_err_deg"):
        assert key in m and np.isfinite(m[key]) and m[key] >= 0, key
    # the zero-flow EPE is the mean GT flow magnitude over valid pixels (hand computation)
    mags = []
    for i in range(3):
        g = data.gt_flow[i].permute(1, 2, 0).numpy()
        valid = np.isfinite(g).all(-1)
        mags.append(np.linalg.norm(g[valid], axis=-1).mean())
    assert abs(m["flow_epe_zero"] - float(np.mean(mags))) < 1e-6
    # rotation error of "no rotation" = mean GT rotation angle between consecutive frames
    assert m["rot_err_deg_identity"] < 5.0


def test_trainer_writes_eval_jsonl(tmp_path) -> None:
    cfg = tiny_config("cpu_smoke_monodepth2", f"eval.source.spec={SPEC}", "eval.max_frames=3", "eval.every=1",
                      "steps=1")
    tr = Trainer(cfg, tmp_path / "run", resume="never")
    summary = tr.run()
    tr.close()
    lines = (tmp_path / "run" / "eval.jsonl").read_text().splitlines()
    assert len(lines) == 1
    rec = json.loads(lines[0])
    assert rec["step"] == 1 and "depth_abs_rel" in rec and "posenet_rot_err_deg" in rec
    assert "flow_epe" not in rec  # no flow decoder in this model
    assert summary.evals[0]["step"] == 1
