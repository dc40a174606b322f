"""nets.device: one device / precision choice for the Estimator, the fast path and training (CPU-checkable:
CUDA's presence is simulated where the rule depends on it)."""
from __future__ import annotations

import pytest
import torch

from depth_pose_ros.nets import device as dev


@pytest.fixture
def with_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)


@pytest.fixture
def without_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


def test_auto_and_named_devices_without_cuda(without_cuda: None) -> None:
    assert dev.resolve_device("auto") == torch.device("cpu")
    assert dev.resolve_device("auto", local_rank=1) == torch.device("cpu")
    assert dev.resolve_device("cpu") == torch.device("cpu")
    for name in ("cuda", "cuda:1"):
        with pytest.raises(ValueError, match=rf"device '{name}': CUDA is not available on this machine"):
            dev.resolve_device(name)
    with pytest.raises(ValueError, match="device 'tpu0' is not a torch device"):
        dev.resolve_device("tpu0")


def test_bare_cuda_is_the_local_ranks_gpu_only_in_a_distributed_process(with_cuda: None) -> None:
    assert dev.resolve_device("auto") == torch.device("cuda")
    assert dev.resolve_device("auto", local_rank=2) == torch.device("cuda:2")
    assert dev.resolve_device("cuda") == torch.device("cuda") and dev.resolve_device("cuda").index is None
    assert dev.resolve_device("cuda", local_rank=3) == torch.device("cuda:3")
    assert dev.resolve_device("cuda:1", local_rank=3) == torch.device("cuda:1")  # a named GPU stays named
    with pytest.raises(ValueError, match="device 'cuda:2': this machine has 2 CUDA device"):
        dev.resolve_device("cuda:2")


@pytest.mark.parametrize("cpu_bf16", [True, False])
def test_precision_rules(monkeypatch: pytest.MonkeyPatch, cpu_bf16: bool) -> None:
    monkeypatch.setattr(dev, "cpu_supports_bf16", lambda: cpu_bf16)
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    # the Estimator: auto reduces only on the fast path, to the device's fast precision
    assert dev.resolve_precision("auto", cpu, auto_reduced=False) == "fp32"
    assert dev.resolve_precision("auto", cpu) == ("bf16" if cpu_bf16 else "fp32")
    assert dev.resolve_precision("auto", cuda) == "fp16"
    # training: auto is fp16 AMP on CUDA and fp32 on every CPU
    assert dev.resolve_precision("auto", cpu, auto_cpu_bf16=False) == "fp32"
    assert dev.resolve_precision("auto", cuda, auto_cpu_bf16=False) == "fp16"
    assert dev.autocast_dtype(cpu) == (torch.bfloat16 if cpu_bf16 else None)
    # explicit choices pass, fp16 only on CUDA
    assert [dev.resolve_precision(p, cpu) for p in ("fp32", "bf16")] == ["fp32", "bf16"]
    assert dev.resolve_precision("fp16", cuda) == "fp16"
    with pytest.raises(ValueError, match="fp16 needs a CUDA device"):
        dev.resolve_precision("fp16", cpu)
    with pytest.raises(ValueError, match="precision 'half' is not one of"):
        dev.resolve_precision("half", cpu)
    assert [dev.precision_dtype(p) for p in ("fp32", "bf16", "fp16")] == [None, torch.bfloat16, torch.float16]
