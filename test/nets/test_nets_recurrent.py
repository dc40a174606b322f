"""Recurrent cell: history dependence, exact reset, resolution change, BPTT gradients and truncation."""
from __future__ import annotations

import pytest
import torch
from nets_helpers import H, W, small_cfg

from depth_pose_ros.nets.model import build_model
from depth_pose_ros.nets.recurrent import RecurrentState


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_output_depends_on_history_and_reset_restores_first_frame(cell: str) -> None:
    torch.manual_seed(0)
    model = build_model(small_cfg(recurrent={"type": cell, "levels": [3, 4], "hidden_channels": [8, 16]})).eval()
    x0, x1, x2 = (torch.rand(1, 3, H, W) for _ in range(3))
    with torch.no_grad():
        first, _ = model.encode(x2)
        depth_first = model.predict_depth(first)[0]
        _, s_a = model.encode(x0)
        _, s_b = model.encode(x1)
        feats_a, s_a2 = model.encode(x2, s_a)
        feats_b, _ = model.encode(x2, s_b)
        depth_a = model.predict_depth(feats_a)[0]
        depth_b = model.predict_depth(feats_b)[0]
        flow_a = model.predict_flow(feats_a, feats_a).forward[0]
        flow_b = model.predict_flow(feats_b, feats_b).forward[0]
        # the recurrent levels carry the history strongly; the untrained decoders pass a small but
        # real part of it on (identical computations would give exactly equal outputs on CPU)
        for lv in (3, 4):
            rel = (feats_a[lv] - feats_b[lv]).abs().max() / feats_a[lv].abs().max()
            assert rel > 1e-3
        assert (depth_a - depth_b).abs().max() > 1e-6
        assert (flow_a - flow_b).abs().max() > 1e-6
        # reset: exactly the first-frame behaviour
        reset_feats, _ = model.encode(x2, s_a2.reset())
        assert torch.equal(model.predict_depth(reset_feats)[0], depth_first)
        zero_feats, _ = model.encode(x2, model.init_state(1, H, W))
        assert torch.equal(model.predict_depth(zero_feats)[0], depth_first)
    assert len(s_a.hidden) == 2 and len(s_a.cell) == (2 if cell == "lstm" else 0)
    assert s_a.hidden[0].shape == (1, 8, H // 16, W // 16) and s_a.hidden[1].shape == (1, 16, H // 32, W // 32)


def test_resolution_or_batch_change_reinitialises_the_state() -> None:
    torch.manual_seed(0)
    model = build_model(small_cfg()).eval()
    with torch.no_grad():
        _, state = model.encode(torch.rand(1, 3, H, W))
        _, state = model.encode(torch.rand(1, 3, H, W), state)
        big = torch.rand(1, 3, 2 * H, W)
        feats, new_state = model.encode(big, state)
        fresh, _ = model.encode(big)
        assert new_state.image_size == (2 * H, W)
        assert torch.equal(feats[4], fresh[4])
        feats2, s2 = model.encode(torch.rand(3, 3, H, W), state)
        assert s2.batch_size == 3


def test_state_detach_and_reset_keep_shapes() -> None:
    h = torch.ones(1, 4, 2, 3, requires_grad=True) * 2
    state = RecurrentState((h,), (), (64, 96))
    d = state.detach()
    assert not d.hidden[0].requires_grad and torch.equal(d.hidden[0], h.detach())
    r = state.reset()
    assert torch.equal(r.hidden[0], torch.zeros(1, 4, 2, 3)) and r.image_size == (64, 96)


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_gradients_cross_frames_and_are_cut_at_truncation(cell: str) -> None:
    torch.manual_seed(0)
    model = build_model(small_cfg(recurrent={"type": cell})).eval()  # eval: BN statistics fixed
    clip = torch.rand(1, 4, 3, H, W)

    def grads(truncate_every: int | None) -> tuple[torch.Tensor, list[torch.Tensor]]:
        images = clip.clone().requires_grad_(True)
        model.zero_grad()
        out = model.forward_clip(images, truncate_every=truncate_every)
        out.depths[-1][0].mean().backward()  # loss on the last frame's depth only
        return images.grad, [p.grad.clone() for p in model.recurrent.parameters()]

    img_grad, cell_grads = grads(None)
    # the last frame's depth reaches frame 0 only through the recurrent state
    assert img_grad[:, 0].abs().sum() > 0
    assert all(g.abs().sum() > 0 for g in cell_grads)
    img_grad_t, cell_grads_t = grads(2)  # detach before frames 2: frames 0 and 1 are cut off
    assert torch.equal(img_grad_t[:, 0], torch.zeros_like(img_grad_t[:, 0]))
    assert torch.equal(img_grad_t[:, 1], torch.zeros_like(img_grad_t[:, 1]))
    assert img_grad_t[:, 2].abs().sum() > 0
    # the cell gradient differs: the contributions of the early steps are gone
    assert any((a - b).abs().max() > 1e-9 for a, b in zip(cell_grads, cell_grads_t))


def test_clip_state_can_continue_with_truncated_bptt() -> None:
    torch.manual_seed(0)
    model = build_model(small_cfg()).eval()
    clip = torch.rand(1, 2, 3, H, W)
    out = model.forward_clip(clip)
    assert out.state.hidden[0].requires_grad
    nxt = model.forward_clip(clip, out.state.detach())
    nxt.depths[0][0].mean().backward()  # no error: the previous graph is not needed


def test_flow_can_leave_the_shared_encoder_to_the_depth() -> None:
    """flow_trains_encoder=False: same outputs, but a flow loss no longer reaches the encoder or the cell,
    while it still trains the flow decoder (the shared-encoder training ablation)."""
    torch.manual_seed(0)
    model = build_model(small_cfg()).eval()
    clip = torch.rand(1, 3, 3, H, W)
    for shared in (True, False):
        model.zero_grad(set_to_none=True)
        out = model.forward_clip(clip, flow_trains_encoder=shared)
        out.flows[0].forward[0].abs().mean().backward()
        enc = [p.grad for p in model.encoder.parameters() if p.grad is not None]
        assert (len(enc) > 0 and any(float(g.abs().sum()) > 0 for g in enc)) == shared
        assert any(float(p.grad.abs().sum()) > 0 for p in model.flow_decoder.parameters() if p.grad is not None)
    with torch.no_grad():
        a, b = model.forward_clip(clip), model.forward_clip(clip, flow_trains_encoder=False)
    assert torch.equal(a.flows[0].forward[0], b.flows[0].forward[0]) and torch.equal(a.depths[1][0], b.depths[1][0])
