from .skip_mismatched_weights_hook import SkipMismatchedWeightsHook

__all__ = ['SkipMismatchedWeightsHook']
