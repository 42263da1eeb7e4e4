"""Seconds per CPU training step, and what the kernel costs, in each training setting.

Run: python bench/timing/training_step.py [--steps 30]   (writes docs/results/training_step.md)

Times one SGD step (forward, loss, backward, update) of width-0.25 networks at the Tiny ImageNet
source's budget (32x32 pixels, 200 classes, batch 64, channels-last, one thread), on random
images, in three settings, each in a fresh process (the allocator setting is process-wide):
  * float32 with glibc's default allocator behaviour;
  * float32 with `retain_freed_memory()` (what `train_network` does);
  * bfloat16 autocast (`train.compute_dtype=bfloat16`) with `retain_freed_memory()`.
Per setting: median step time (after 5 warm-up steps), user and kernel CPU seconds per step,
and minor page faults per step. The machine's load average at the start is stamped: numbers
taken beside other work are slower, but the settings share the conditions.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/: common.py
from common import RESULTS, write_stamped  # noqa: E402

NETWORKS = {"all 256": [256] * 13, "512 early": [512] * 4 + [128] * 9}
SETTINGS = {  # name: (compute_dtype, retain freed memory)
    "float32, glibc defaults": ("float32", False),
    "float32, retained memory": ("float32", True),
    "bfloat16, retained memory": ("bfloat16", True),
}

PROBE = """
import json, resource, sys, time
import torch
from torch import nn
from xpert_evo.space.backbone import Backbone
from xpert_evo.training.network import build_network, retain_freed_memory
from xpert_evo.training.train import MEMORY_FORMAT, TrainSpec
channels, dtype, retain, steps = json.loads(sys.argv[1])
if retain:
    retain_freed_memory()
torch.set_num_threads(1)
torch.manual_seed(0)
model = build_network(channels, Backbone(input_size=32, num_classes=200), 0.25)
model = model.to(memory_format=MEMORY_FORMAT)
opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True)
x = torch.randn(64, 3, 32, 32).contiguous(memory_format=MEMORY_FORMAT)
y = torch.randint(0, 200, (64,))
autocast = TrainSpec(compute_dtype=dtype).autocast(torch.device("cpu"))
times = []
for i in range(5 + steps):
    if i == 5:
        before = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    with autocast:
        loss = nn.functional.cross_entropy(model(x), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    times.append(time.perf_counter() - start)
after = resource.getrusage(resource.RUSAGE_SELF)
times = sorted(times[5:])
print(json.dumps({"median_step_s": times[len(times) // 2],
                  "user_s_per_step": (after.ru_utime - before.ru_utime) / steps,
                  "kernel_s_per_step": (after.ru_stime - before.ru_stime) / steps,
                  "page_faults_per_step": (after.ru_minflt - before.ru_minflt) / steps}))
"""


def measure(channels: list[int], dtype: str, retain: bool, steps: int) -> dict[str, float]:
    """One setting in a fresh Python process; its figures."""
    done = subprocess.run([sys.executable, "-c", PROBE,
                           json.dumps([channels, dtype, retain, steps])],
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.splitlines()[-1])


def main() -> None:
    """Measure every network in every setting, print and write the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    args = parser.parse_args()
    load = os.getloadavg()[0]
    rows = []
    for net, channels in NETWORKS.items():
        for name, (dtype, retain) in SETTINGS.items():
            figures = measure(channels, dtype, retain, args.steps)
            rows.append({"network (x0.25 width)": net, "setting": name, **figures})
            print(rows[-1], flush=True)
    frame = pd.DataFrame(rows)
    base = frame.groupby("network (x0.25 width)")["median_step_s"].transform("first")
    frame["speed_vs_float32_defaults"] = base / frame["median_step_s"]
    text = write_stamped(RESULTS / "training_step.md", [
        "",
        f"One training step (batch 64, 32x32 pixels, 200 classes, one thread), median of "
        f"{args.steps} after 5 warm-up steps; CPU seconds and minor page faults per step from "
        "getrusage. Each setting runs in a fresh process.", "",
        frame.to_markdown(index=False, floatfmt=".3f"), "", "",
    ], f"load average {load:.1f} at the start")
    print(text)


if __name__ == "__main__":
    main()
