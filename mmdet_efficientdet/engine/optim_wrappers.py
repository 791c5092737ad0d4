"""Mixed precision on the CPU.

mmengine 0.10.7's ``AmpOptimWrapper`` refuses to run without a GPU
("AmpOptimizerWrapper is only available training on gpu, npu, mlu or
musa"), yet torch autocasts on the CPU in bfloat16. bfloat16 keeps
float32's exponent range, so no loss scaling is needed.
"""

from contextlib import contextmanager

import torch
from mmdet.registry import OPTIM_WRAPPERS
from mmengine.optim import OptimWrapper
from torch import nn


@OPTIM_WRAPPERS.register_module()
class CPUAmpOptimWrapper(OptimWrapper):
    """Optimizer wrapper that runs forward and loss under CPU autocast.

    Args:
        dtype (str): Autocast dtype, ``'bfloat16'`` (default) or
            ``'float16'``.
        **kwargs: Passed to :class:`mmengine.optim.OptimWrapper`.
    """

    def __init__(self, dtype: str = 'bfloat16', **kwargs) -> None:
        if dtype not in ('bfloat16', 'float16'):
            raise ValueError(
                f"dtype must be 'bfloat16' or 'float16', got {dtype!r}"
            )
        super().__init__(**kwargs)
        self.cast_dtype = getattr(torch, dtype)

    @contextmanager
    def optim_context(self, model: nn.Module):
        with super().optim_context(model), torch.autocast(
            device_type='cpu', dtype=self.cast_dtype
        ):
            yield


def amp_optim_wrapper_type() -> dict:
    """What ``--amp`` sets in ``optim_wrapper``: fp16 with a dynamic loss
    scale on CUDA (mmengine's ``AmpOptimWrapper``), bf16 on the CPU."""
    if torch.cuda.is_available():
        return dict(type='AmpOptimWrapper', loss_scale='dynamic')
    return dict(type='CPUAmpOptimWrapper', dtype='bfloat16')
