from .checkpoint_globals import (
    allowed_checkpoint_globals,
    register_checkpoint_globals,
)
from .cli import add_common_args, load_config, parse_common
from .hooks import (
    CheckFiniteHook,
    InputSizeCheckHook,
    SkipMismatchedWeightsHook,
    input_size_problems,
)
from .launch import adapt_launch
from .optim_wrappers import CPUAmpOptimWrapper, amp_optim_wrapper_type
from .schedules import CosineToEndLR, warmup_cosine

__all__ = [
    'CPUAmpOptimWrapper',
    'CheckFiniteHook',
    'CosineToEndLR',
    'InputSizeCheckHook',
    'SkipMismatchedWeightsHook',
    'adapt_launch',
    'add_common_args',
    'load_config',
    'parse_common',
    'allowed_checkpoint_globals',
    'input_size_problems',
    'amp_optim_wrapper_type',
    'register_checkpoint_globals',
    'warmup_cosine',
]
