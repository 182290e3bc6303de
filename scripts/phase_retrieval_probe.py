"""Per-restart residual and nMSE of phase retrieval on random MNIST digits: how the README's phase-retrieval
settings were chosen (on *training* digits). Prints, at checkpoints, the nMSE of the restart each image would keep
(lowest residual): mean, median, worst, digits above 0.1, and the oracle (best nMSE) mean; then per digit every
restart's residual / nMSE. Example (the README's training-digit table, seed 1, random starts with retries)::

    python scripts/phase_retrieval_probe.py --ratio 0.3 --seed 1 --init random --retry 0.15 --retry-every 500 \
        --retry-until 0.6
"""
import argparse
import time

import numpy as np
import torch

from dip_lightning.algorithms import NetGD, NetPGD, Restarts, Retry
from dip_lightning.data import MNISTDataModule
from dip_lightning.metrics import normalized_mse
from dip_lightning.operators import PhaseRetrieval
from dip_lightning.priors import DeepDecoder

p = argparse.ArgumentParser()
p.add_argument("--ratio", type=float, default=0.3)
p.add_argument("--digits", type=int, default=16)
p.add_argument("--seed", type=int, default=1)
p.add_argument("--restarts", type=int, default=8)
p.add_argument("--iterations", type=int, default=5000)
p.add_argument("--init", default="spectral")
p.add_argument("--lr", type=float, default=0.2)
p.add_argument("--train", type=int, default=1, help="1: training digits (tuning), 0: test digits")
p.add_argument("--data-root", default="../shared/data")
p.add_argument("--retry", type=float, default=None)
p.add_argument("--retry-every", type=int, default=1000)
p.add_argument("--retry-until", type=float, default=0.5)
p.add_argument("--pgd", type=int, default=0)
p.add_argument("--eta", type=float, default=1.0)
p.add_argument("--checkpoints", default="500,1000,2000,3000,5000")
a = p.parse_args()
torch.set_num_threads(2)
data = MNISTDataModule(root=a.data_root, train=bool(a.train))
ds = data.load_images()
idx = sorted(np.random.default_rng(a.seed).choice(len(ds), a.digits, replace=False).tolist())
x = torch.stack([ds[i] for i in idx])
op = PhaseRetrieval((1, 28, 28), ratio=a.ratio)
extra = {"inner_steps": 10, "eta": a.eta} if a.pgd else {}
m = (NetPGD if a.pgd else NetGD)(op, **extra, chunk_size=a.digits, iterations=a.iterations, compile=True, prior=lambda b, s, seed: DeepDecoder(b, s, seed, channels=[25, 15, 10]), optimizer=lambda params: torch.optim.SGD(params, lr=a.lr, momentum=0.9, foreach=True), restarts=Restarts(count=a.restarts, combine="best"), retry=Retry(residual=a.retry, every=a.retry_every, until=a.retry_until), spectral_start=300)
batch = {"index": torch.tensor(idx), "image": x}
t = time.perf_counter()
checks = [int(c) for c in a.checkpoints.split(",")]
last = {}


@torch.no_grad()
def checkpoint(chunk, loss) -> None:
    if chunk.iteration not in checks:
        return
    est = m.decoder_estimates(chunk)
    res = op.relative_residual(est, chunk.decoder_measurements).view(a.restarts, a.digits)
    tgt = chunk.per_decoder(x)
    nm = torch.minimum(normalized_mse(est, tgt), normalized_mse(-est, tgt)).view(a.restarts, a.digits)
    best = res.argmin(0)
    bn = nm[best, torch.arange(a.digits)]
    print(f"it {chunk.iteration} ({time.perf_counter()-t:.0f}s): best-residual nMSE mean {bn.mean():.4f} median "
          f"{bn.median():.4f} worst {bn.max():.3f} fails {(bn>0.1).sum().item()} | oracle mean "
          f"{nm.min(0).values.mean():.4f} retried {chunk.state.get('retried', 0)}", flush=True)
    # how far the kept restart is from the nearest other restart: restarts that found the image agree
    stacked = est.view(a.restarts, a.digits, -1)
    kept = stacked[best, torch.arange(a.digits)]
    spread = (stacked - kept).pow(2).sum(-1) / kept.pow(2).sum(-1).clamp_min(1e-12)
    spread[best, torch.arange(a.digits)] = torch.inf
    last.update(res=res, nm=nm, best=best, agreement=spread.min(0).values)


m.reconstruct(batch, on_step=checkpoint, stop_early=False)
res, nm = last["res"], last["nm"]
print("digits", idx, f"(seed {a.seed}, {'training' if a.train else 'test'} digits)")
print("digit index | kept restart: residual nMSE | distance to the nearest other restart")
for d in range(a.digits):
    b = last["best"][d]
    print(f"summary {d} {idx[d]} {res[b, d]:.3f} {nm[b, d]:.4f} {last['agreement'][d]:.4f}")
for d in range(a.digits):
    r, n = res[:, d], nm[:, d]
    print(d, idx[d], " ".join(f"{rr:.3f}/{nn:.3f}" for rr, nn in zip(r.tolist(), n.tolist())))
