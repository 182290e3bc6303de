"""Is a digit that phase retrieval loses a failure of the search or of the measurements? Two runs of Net-GD with
`configs/mnist_cpr_netgd.yaml`'s settings (f, SGD momentum 0.9, 5000 iterations) on the given MNIST digits:

- ``truth``: every decoder is first fitted to its clean digit (Adam lr 0.01, 3000 steps, no measurements), then
  Net-GD runs from there at ``--lr``. Its residual ||y - |A x||| / ||y|| is that of the true basin.
- ``search``: the random search the config had before its smoothed start (32 restarts at one rate, failing ones
  re-seeded every 250 iterations until 80% of the budget, the restart with the lowest residual kept), also printing the lowest residual any network reached at
  any multiple of 25 iterations, and that network's nMSE.

If the true basin's residual is below everything the search ever reached, the measurements do single out the right
image and the search never got there; if not, no search can help. Example (the digits of docs/results/mnist_cpr/robust.md)::

    python scripts/phase_retrieval_basin.py --train --indices 8100 36035 58801 20338 --mode truth --lr 0.1
    python scripts/phase_retrieval_basin.py --indices 4657 9691 --mode search
"""
import argparse
import time

import torch

from dip_lightning.algorithms import NetGD, Restarts, Retry
from dip_lightning.chunks import Chunk
from dip_lightning.data import MNISTDataModule
from dip_lightning.metrics import normalized_mse
from dip_lightning.operators import PhaseRetrieval
from dip_lightning.priors import DeepDecoder

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--indices", type=int, nargs="+", required=True)
parser.add_argument("--train", action="store_true", help="training digits (default: test digits)")
parser.add_argument("--mode", choices=["truth", "search"], default="truth")
parser.add_argument("--ratio", type=float, default=0.3)
parser.add_argument("--lr", type=float, default=0.2)
parser.add_argument("--optimizer", choices=["sgd", "adam"], default="sgd",
                    help="sgd: the config's SGD with momentum 0.9; adam: Adam (try --lr 0.01)")
parser.add_argument("--iterations", type=int, default=5000)
parser.add_argument("--data-root", default="../shared/data")
parser.add_argument("--save", default=None, metavar="FILE.pt",
                    help="save the digits, the kept estimates and their residual and nMSE (torch.save of a dict)")
args = parser.parse_args()
torch.set_num_threads(2)
images = MNISTDataModule(root=args.data_root, train=args.train).load_images()
x = torch.stack([images[i] for i in args.indices])
operator = PhaseRetrieval((1, 28, 28), ratio=args.ratio)
search = args.mode == "search"


class FromTruth(NetGD):
    """Net-GD whose decoders start fitted to the clean images."""

    def initialize(self, chunk: Chunk) -> None:
        super().initialize(chunk)
        adam = torch.optim.Adam(self.prior.parameters(), lr=0.01)
        target = chunk.per_decoder(x)
        for _ in range(3000):
            loss = (self.prior.generate(self.prior.inputs(chunk.decoders)) - target).pow(2).flatten(1).mean(1).sum()
            adam.zero_grad()
            loss.backward()
            adam.step()
        self.clear_optimizer_state()
        with torch.no_grad():
            chunk.estimate = self.prior(chunk.decoders)
        report(chunk, "fitted to the clean digits")


def report(chunk: Chunk, label: str) -> None:
    with torch.no_grad():
        estimates = module.prior(chunk.decoders)
        residual = operator.relative_residual(estimates, chunk.decoder_measurements)
        nmse = normalized_mse(estimates, chunk.per_decoder(x))
    print(f"{label}: " + "  ".join(f"{i}: residual {r:.3f} nMSE {n:.4f}"
                                   for i, r, n in zip(args.indices, residual.tolist(), nmse.tolist())), flush=True)


restarts = 32 if search else 1
module = (NetGD if search else FromTruth)(
    operator, chunk_size=len(args.indices), iterations=args.iterations, prior=lambda b, shape, seed: DeepDecoder(b, shape, seed, channels=[25, 15, 10]), optimizer=(lambda parameters: torch.optim.SGD(parameters, lr=args.lr, momentum=0.9, foreach=True))
    if args.optimizer == "sgd" else (lambda parameters: torch.optim.Adam(parameters, lr=args.lr, foreach=True)), restarts=Restarts(count=restarts, combine="best"), retry=Retry(residual=0.15 if search else None, every=250, until=0.8))
lowest = {"residual": torch.full((len(args.indices),), torch.inf), "nmse": torch.zeros(len(args.indices))}
start = time.perf_counter()


@torch.no_grad()
def on_step(chunk: Chunk, loss: torch.Tensor) -> None:
    if not search and chunk.iteration in (500, 2000, args.iterations):
        report(chunk, f"iteration {chunk.iteration}")
    if search and chunk.iteration % 25 == 0:
        estimates = module.prior(chunk.decoders)
        residual = operator.relative_residual(estimates, chunk.decoder_measurements).view(restarts, -1)
        nmse = normalized_mse(estimates, chunk.per_decoder(x)).view(restarts, -1)
        best = residual.min(0)
        lower = best.values < lowest["residual"]
        lowest["residual"] = torch.where(lower, best.values, lowest["residual"])
        lowest["nmse"] = torch.where(lower, nmse[best.indices, torch.arange(len(args.indices))], lowest["nmse"])


result = module.reconstruct({"index": torch.tensor(args.indices), "image": x}, on_step=on_step, stop_early=False)
print(f"{args.mode}, {args.optimizer} lr {args.lr}, f = {args.ratio}, {'training' if args.train else 'test'} digits "
      f"({time.perf_counter() - start:.0f} s)")
for b, i in enumerate(args.indices):
    line = f"{i}: kept residual {result.metrics['residual'][b]:.3f} nMSE {result.metrics['nmse'][b]:.4f}"
    if search:
        line += f"; lowest residual reached {lowest['residual'][b]:.3f} (nMSE {lowest['nmse'][b]:.4f})"
    print(line)
if args.save:
    torch.save({"index": torch.tensor(args.indices), "truth": x, "estimate": result.reconstruction,
                "residual": result.metrics["residual"], "nmse": result.metrics["nmse"], "mode": args.mode,
                "lr": args.lr, "ratio": args.ratio}, args.save)
    print(f"saved to {args.save}")
