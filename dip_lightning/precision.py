"""Which precision the measurement products run in, chosen by what the hardware computes natively.

bfloat16 products (``medium``) are fast where the device has bfloat16 units (AMX or AVX512-BF16 on x86 CPUs,
tensor cores on GPUs from compute capability 8.0) and emulated, many times slower, where it does not: on a
2-core AVX2-only AMD EPYC a CelebA config ran 25 times slower in bfloat16 than in float32
(``docs/results/speed/precision.md``). ``auto`` therefore uses bfloat16 only where it is native, and the
reproducible float32 mode (``highest``) elsewhere.
"""

from __future__ import annotations

from typing import Any

import torch

PRECISIONS = ("auto", "highest", "high", "medium")


def uses_cuda(accelerator: Any) -> bool:
    """Whether ``--trainer.accelerator`` (a name or an Accelerator) puts the run on a CUDA GPU here."""
    if isinstance(accelerator, str):
        return accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available()
    return type(accelerator).__name__ == "CUDAAccelerator"


def native_bfloat16(cuda: bool) -> tuple[bool, str]:
    """Whether the device computes bfloat16 products natively, and what says so."""
    if cuda:
        major, minor = torch.cuda.get_device_capability()
        name = torch.cuda.get_device_name()
        if major >= 8:
            return True, f"{name} (compute capability {major}.{minor}) has bfloat16 tensor cores"
        return False, f"{name} (compute capability {major}.{minor}) has no bfloat16 tensor cores"
    capability = torch.backends.cpu.get_cpu_capability()
    if torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported():
        return True, f"this CPU ({capability}) computes bfloat16 natively (AVX512-BF16 or AMX)"
    return False, f"this CPU ({capability}) has neither AVX512-BF16 nor AMX, so bfloat16 products are emulated"


def choose_matmul_precision(requested: str, accelerator: Any = "auto") -> tuple[str, str | None, str | None]:
    """The float32 matmul precision to set for ``requested`` on ``accelerator``: ``(precision, note, warning)``.

    ``auto`` is ``medium`` (bfloat16 products) where the device computes bfloat16 natively and ``highest`` (the
    reproducible float32 products) elsewhere; ``note`` says which and why. An explicit ``medium`` on a device
    without native bfloat16 is kept, with a ``warning`` that it will be slow. Other choices are taken as given.
    """
    if requested not in ("auto", "medium"):
        return requested, None, None
    native, why = native_bfloat16(uses_cuda(accelerator))
    if requested == "medium":
        warning = None if native else (
            f"--float32_matmul_precision medium runs the measurement products in bfloat16, but {why}: expect them to be "
            "many times slower than in float32; use --float32_matmul_precision auto (or highest)")
        return "medium", None, warning
    chosen = "medium" if native else "highest"
    meaning = "bfloat16 products" if native else "float32 products, reproducible"
    return chosen, f"float32_matmul_precision auto: {chosen} ({meaning}): {why}", None
