"""Multi-process reconstruction: DDP processes that never synchronize gradients."""

from __future__ import annotations

from lightning.pytorch.strategies import DDPStrategy, StrategyRegistry


class IndependentDDPStrategy(DDPStrategy):
    """DDP's processes, launcher and collectives, without ``DistributedDataParallel``.

    Each process reconstructs its own shard of the images with its own decoders, so the
    gradient all-reduce of plain DDP would average the gradients of *different* images. This
    strategy keeps the LightningModule unwrapped: backward passes stay local, while results are
    still gathered across processes (``all_gather_object``) and metrics synced. Works on
    CPUs (gloo) and GPUs (nccl), on one node or several (torchrun, SLURM).
    """

    strategy_name = "ddp_independent"

    def configure_ddp(self) -> None:
        pass  # deliberately no DistributedDataParallel wrapper: no gradient synchronization


StrategyRegistry.register(
    IndependentDDPStrategy.strategy_name,
    IndependentDDPStrategy,
    description="DDP processes without gradient synchronization (independent per-image fits)",
    start_method="popen",
)
