"""A small real PyTorch decode-style workload for validating Causeway on a GPU host.

Runs STEPS steps of a few matmuls + a softmax on the GPU, optionally with a
blocking .item() per step (the seed incident: a device-to-host sync in the
loop), under torch.profiler, and prints one JSON line: per-op CUDA runtime
call counts as the profiler saw them, and steps/s.
"""
import json
import sys
import time

import torch
from torch.profiler import ProfilerActivity, profile

steps = int(sys.argv[1]) if len(sys.argv) > 1 else 200
sync = "--sync" in sys.argv
profiled = "--no-profile" not in sys.argv

dev = torch.device("cuda")
w = [torch.randn(1024, 1024, device=dev) for _ in range(4)]
x = torch.randn(8, 1024, device=dev)
torch.cuda.synchronize()


def run():
    global x
    t0 = time.perf_counter()
    for _ in range(steps):
        h = x
        for m in w:
            h = torch.relu(h @ m)
        p = torch.softmax(h, dim=-1)
        if sync:
            p.max().item()  # blocking device-to-host copy every step
        x = h * 0.5
    torch.cuda.synchronize()
    return time.perf_counter() - t0


counts = {}
if profiled:
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        elapsed = run()
    for evt in prof.key_averages():
        if evt.key.startswith("cuda") or evt.key.startswith("cu"):
            counts[evt.key] = evt.count
else:
    elapsed = run()
print(json.dumps({"workload": "torch_decode", "steps": steps, "sync": sync, "elapsed_s": elapsed,
                  "steps_per_s": steps / elapsed, "profiler_counts": counts,
                  "torch": torch.__version__, "cuda": torch.version.cuda}))
