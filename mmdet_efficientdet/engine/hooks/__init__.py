from .check_finite_hook import CheckFiniteHook

__all__ = ['CheckFiniteHook']
