from .checkpoint_globals import (
    allowed_checkpoint_globals,
    checkpoint_safe_globals,
)
from .cli import add_common_args, load_config, parse_common
from .hooks import CheckFiniteHook
from .launch import adapt_launch
from .optim_wrappers import CPUAmpOptimWrapper, amp_optim_wrapper_type
from .schedules import CosineToEndLR, warmup_cosine

__all__ = [
    'CPUAmpOptimWrapper',
    'CheckFiniteHook',
    'CosineToEndLR',
    'adapt_launch',
    'add_common_args',
    'load_config',
    'parse_common',
    'allowed_checkpoint_globals',
    'amp_optim_wrapper_type',
    'checkpoint_safe_globals',
    'warmup_cosine',
]
