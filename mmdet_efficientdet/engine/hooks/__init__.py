from .check_finite_hook import CheckFiniteHook
from .skip_mismatched_weights_hook import SkipMismatchedWeightsHook

__all__ = ['CheckFiniteHook', 'SkipMismatchedWeightsHook']
