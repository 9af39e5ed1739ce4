"""Times the official DiT training step, forward pass or a matrix product; prints one JSON line.

Run by bench/side-by-side.sh inside the PyTorch reference root, with DiT's models.py and diffusion/ on the path:
    python3 dit_bench.py --what train --batch 8 --dtype float32 --warmup 2 --runs 5
The training step is train.py's: diffusion.training_losses (MSE + the learned-sigma VB term), AdamW (lr 1e-4, no
weight decay), update_ema. bf16 runs the forward and loss under CPU autocast, as PyTorch users would.
"""
import argparse, json, statistics, time
from copy import deepcopy

import torch

p = argparse.ArgumentParser()
p.add_argument("--what", choices=["train", "forward", "matmul"], required=True)
p.add_argument("--batch", type=int, default=8)
p.add_argument("--dtype", choices=["float32", "bf16"], default="float32")
p.add_argument("--model", default="DiT-S/2")
p.add_argument("--input-size", type=int, default=32)
p.add_argument("--num-classes", type=int, default=1000)
p.add_argument("--warmup", type=int, default=2)
p.add_argument("--runs", type=int, default=5)
p.add_argument("--threads", type=int, default=2)
p.add_argument("--matmul-size", type=int, default=2048)
a = p.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(0)
autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.dtype == "bf16")


def timed(fn):
    for _ in range(a.warmup):
        fn()
    times = []
    for _ in range(a.runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


result = {"what": a.what, "batch": a.batch, "dtype": a.dtype, "threads": torch.get_num_threads(), "torch": torch.__version__}
if a.what == "matmul":
    n = a.matmul_size
    dt = torch.bfloat16 if a.dtype == "bf16" else torch.float32
    x, y = torch.randn(n, n, dtype=dt), torch.randn(n, n, dtype=dt)
    times = timed(lambda: torch.mm(x, y))
    result["gflops"] = 2 * n ** 3 / statistics.median(times) / 1e9
else:
    from models import DiT_models
    from diffusion import create_diffusion

    model = DiT_models[a.model](input_size=a.input_size, num_classes=a.num_classes)
    result["parameters"] = sum(q.numel() for q in model.parameters())
    x = torch.randn(a.batch, 4, a.input_size, a.input_size)
    y = torch.randint(0, a.num_classes, (a.batch,))
    if a.what == "forward":
        model.eval()
        t = torch.randint(0, 1000, (a.batch,))

        def forward():
            with torch.no_grad(), autocast:
                model(x, t, y)
        times = timed(forward)
    else:
        diffusion = create_diffusion(timestep_respacing="")
        ema = deepcopy(model).requires_grad_(False)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0)
        model.train()

        @torch.no_grad()
        def update_ema(decay=0.9999):
            ema_params = dict(ema.named_parameters())
            for name, param in model.named_parameters():
                ema_params[name].mul_(decay).add_(param.data, alpha=1 - decay)

        def step():
            t = torch.randint(0, diffusion.num_timesteps, (a.batch,))
            with autocast:
                loss = diffusion.training_losses(model, x, t, dict(y=y))["loss"].mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            update_ema()
        times = timed(step)
    result["seconds"] = statistics.median(times)
result["times"] = times
print(json.dumps(result))
