from .check_finite_hook import CheckFiniteHook
from .input_size_check_hook import InputSizeCheckHook, input_size_problems
from .skip_mismatched_weights_hook import SkipMismatchedWeightsHook

__all__ = [
    'CheckFiniteHook',
    'InputSizeCheckHook',
    'SkipMismatchedWeightsHook',
    'input_size_problems',
]
