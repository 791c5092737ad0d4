from .checkpoint_globals import (
    allowed_checkpoint_globals,
    checkpoint_safe_globals,
)
from .launch import adapt_launch
from .optim_wrappers import CPUAmpOptimWrapper, amp_optim_wrapper_type

__all__ = [
    'CPUAmpOptimWrapper',
    'adapt_launch',
    'allowed_checkpoint_globals',
    'amp_optim_wrapper_type',
    'checkpoint_safe_globals',
]
