"""Worker of the DDP test (run by torchrun, not collected by pytest): train, then dump this rank's state.

Usage: torchrun --standalone --nproc_per_node 2 test/training/ddp_worker.py OUT_DIR
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))  # test/: tiny_configs
sys.path.insert(0, str(HERE.parents[1]))

from safetensors.torch import save_file  # noqa: E402
from tiny_configs import tiny_config  # noqa: E402

from training.train import Trainer  # noqa: E402


def main() -> None:
    out = Path(sys.argv[1])
    cfg = tiny_config("cpu_smoke", "steps=20", "data.train=[{spec: 'synthetic:seed=3,length=12,height=64,width=96'}]",
                      "schedule.stages=[{name: flow, steps: 8, train: [encoder, recurrent, flow]}, {name: joint}]")
    trainer = Trainer(cfg, out / "run", resume="never")
    rank = trainer.dist.rank
    trainer.sampler.set_position(0, 0)
    shard = [i for i, _ in trainer.sampler]
    summary = trainer.run()
    state = {k: v.detach().cpu().contiguous() for k, v in trainer.model.state_dict().items()}
    save_file(state, str(out / f"rank{rank}.safetensors"))
    info = {"rank": rank, "world": trainer.dist.world_size, "backend": trainer.dist.backend, "shard": shard,
            "step": summary.step, "last_loss": summary.last_loss, "pid": os.getpid()}
    (out / f"rank{rank}.json").write_text(json.dumps(info))
    trainer.close()


if __name__ == "__main__":
    main()
