"""Convolutional recurrent cells (ConvGRU / ConvLSTM) that give the encoder a memory of past frames.

Han et al. (2021) make the depth/flow networks recurrent so that inference uses the temporal
structure of the video. Here a cell sits on one or more encoder levels (a config list, typically
only the stride-32 level where a 3x3 cell sees a large receptive field for little compute) and its
output replaces that level's features: ``out = x + W_out * h_t``. The residual keeps the single-frame
path intact (useful for pre-trained encoders); the 1x1 ``W_out`` lets the hidden state be narrower
than the features.

The state is an explicit immutable object (``RecurrentState``) passed in and returned, so the
streaming Estimator, training (truncated back-propagation through time: ``detach()`` at clip or
truncation boundaries) and ONNX export (state tensors as graph inputs/outputs) all see the same
thing. A zero state is the "first frame" state; ``reset()`` returns it. The state is kept in fp32 even
when the convolutions run under bf16/fp16 autocast, so the recurrence does not accumulate rounding error.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

CELL_TYPES = ("gru", "lstm")


@dataclass(frozen=True)
class RecurrentState:
    """Hidden (and, for LSTM, cell) tensors of every recurrent level, plus the input image size.

    ``hidden[i]`` / ``cell[i]`` belong to the i-th entry of the configured level list and have shape
    B x hidden_channels x H_level x W_level. ``cell`` is empty for GRU. ``image_size`` (H, W) is the
    input resolution the state was built for: a different resolution re-initialises it.
    """

    hidden: tuple[Tensor, ...]
    cell: tuple[Tensor, ...]
    image_size: tuple[int, int]

    @property
    def batch_size(self) -> int:
        return int(self.hidden[0].shape[0]) if self.hidden else 0

    def detach(self) -> RecurrentState:
        """Same values, cut from the autograd graph (the truncation point of truncated BPTT)."""
        return RecurrentState(
            tuple(h.detach() for h in self.hidden), tuple(c.detach() for c in self.cell), self.image_size
        )

    def reset(self) -> RecurrentState:
        """A zero state of the same shape: the network then behaves exactly as on a first frame."""
        return RecurrentState(
            tuple(torch.zeros_like(h) for h in self.hidden),
            tuple(torch.zeros_like(c) for c in self.cell),
            self.image_size,
        )

    def matches(self, batch: int, image_size: tuple[int, int]) -> bool:
        """Whether this state can continue a stream of ``batch`` images of ``image_size``."""
        return self.batch_size == batch and tuple(self.image_size) == tuple(image_size)

    def tensors(self) -> list[Tensor]:
        """Flat list (hidden..., cell...) — the order used for ONNX state inputs/outputs."""
        return [*self.hidden, *self.cell]


class ConvGRUCell(nn.Module):
    """ConvGRU (Ballas et al. 2016): z, r gates and candidate from 3x3 convs on [x, h]."""

    def __init__(self, in_channels: int, hidden_channels: int, kernel_size: int = 3) -> None:
        super().__init__()
        pad = kernel_size // 2
        self.hidden_channels = hidden_channels
        self.gates = nn.Conv2d(in_channels + hidden_channels, 2 * hidden_channels, kernel_size, 1, pad)
        self.candidate = nn.Conv2d(in_channels + hidden_channels, hidden_channels, kernel_size, 1, pad)

    def forward(self, x: Tensor, h: Tensor, c: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        # gates may come out of an autocast conv in bf16/fp16; the state update stays in h's dtype
        z, r = torch.sigmoid(self.gates(torch.cat([x, h.to(x.dtype)], 1)).to(h.dtype)).chunk(2, dim=1)
        n = torch.tanh(self.candidate(torch.cat([x, (r * h).to(x.dtype)], 1)).to(h.dtype))
        return (1.0 - z) * h + z * n, None


class ConvLSTMCell(nn.Module):
    """ConvLSTM (Shi et al. 2015): input, forget, output gates and candidate from one conv on [x, h]."""

    def __init__(self, in_channels: int, hidden_channels: int, kernel_size: int = 3) -> None:
        super().__init__()
        pad = kernel_size // 2
        self.hidden_channels = hidden_channels
        self.gates = nn.Conv2d(in_channels + hidden_channels, 4 * hidden_channels, kernel_size, 1, pad)
        bias = self.gates.bias
        assert bias is not None  # Conv2d has a bias by default
        with torch.no_grad():  # forget-gate bias 1: remember by default (Jozefowicz et al. 2015)
            bias[hidden_channels : 2 * hidden_channels].fill_(1.0)

    def forward(self, x: Tensor, h: Tensor, c: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        if c is None:
            raise ValueError("ConvLSTMCell needs a cell state tensor")
        i, f, o, g = self.gates(torch.cat([x, h.to(x.dtype)], 1)).to(c.dtype).chunk(4, dim=1)
        c_new = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h_new = torch.sigmoid(o) * torch.tanh(c_new)
        return h_new, c_new


class RecurrentFeatures(nn.Module):
    """Recurrent cells on selected encoder levels; all other levels pass through unchanged.

    Args:
        channels: channels of the 5 encoder levels.
        strides: strides of the 5 encoder levels (to size the state from the image size).
        levels: encoder level indices (0..4) that get a cell; empty = no recurrence.
        cell_type: "gru" or "lstm".
        hidden_channels: hidden width per configured level (same length as ``levels``).
        kernel_size: spatial size of the gate convolutions.
    """

    def __init__(
        self,
        channels: tuple[int, ...],
        strides: tuple[int, ...],
        levels: tuple[int, ...],
        cell_type: str = "gru",
        hidden_channels: tuple[int, ...] = (),
        kernel_size: int = 3,
    ) -> None:
        super().__init__()
        if cell_type not in CELL_TYPES:
            raise ValueError(f"recurrent cell type must be one of {CELL_TYPES}, got {cell_type!r}")
        if any(lv < 0 or lv >= len(channels) for lv in levels) or len(set(levels)) != len(levels):
            raise ValueError(f"recurrent levels must be distinct indices in 0..{len(channels) - 1}, got {levels}")
        if len(hidden_channels) != len(levels):
            raise ValueError(
                f"recurrent hidden_channels needs one entry per level: levels={levels}, "
                f"hidden_channels={hidden_channels}"
            )
        self.levels = tuple(levels)
        self.strides = tuple(strides)
        self.cell_type = cell_type
        self.hidden_channels = tuple(hidden_channels)
        cell_cls = ConvGRUCell if cell_type == "gru" else ConvLSTMCell
        self.cells = nn.ModuleList(
            cell_cls(channels[lv], hc, kernel_size) for lv, hc in zip(levels, hidden_channels)
        )
        self.out_proj = nn.ModuleList(nn.Conv2d(hc, channels[lv], 1) for lv, hc in zip(levels, hidden_channels))

    @property
    def enabled(self) -> bool:
        return len(self.levels) > 0

    def init_state(
        self,
        batch: int,
        height: int,
        width: int,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> RecurrentState:
        """Zero state for a stream of ``batch`` images of ``height`` x ``width`` pixels."""
        shapes = [
            (batch, hc, height // self.strides[lv], width // self.strides[lv])
            for lv, hc in zip(self.levels, self.hidden_channels)
        ]
        hidden = tuple(torch.zeros(s, device=device, dtype=dtype) for s in shapes)
        cell = tuple(torch.zeros(s, device=device, dtype=dtype) for s in shapes) if self.cell_type == "lstm" else ()
        return RecurrentState(hidden, cell, (height, width))

    def forward(self, features: list[Tensor], state: RecurrentState) -> tuple[list[Tensor], RecurrentState]:
        """Advance every cell one step; returns (features with recurrent levels replaced, new state)."""
        out = list(features)
        hidden: list[Tensor] = []
        cells: list[Tensor] = []
        for k, lv in enumerate(self.levels):
            c_prev = state.cell[k] if state.cell else None
            h, c = self.cells[k](features[lv], state.hidden[k], c_prev)
            hidden.append(h)
            if c is not None:
                cells.append(c)
            out[lv] = features[lv] + self.out_proj[k](h.to(features[lv].dtype))
        return out, RecurrentState(tuple(hidden), tuple(cells), state.image_size)
