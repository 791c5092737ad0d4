"""Deploy-time rewrites of a trained model: same outputs, less work."""

from .fold_bn import (
    FoldedEfficientDetHead,
    count_batchnorms,
    fold_batchnorms,
    fold_bn_into_conv,
)
from .prepare import prepare_for_deploy
from .static_padding import static_same_padding

__all__ = [
    'FoldedEfficientDetHead',
    'count_batchnorms',
    'fold_batchnorms',
    'fold_bn_into_conv',
    'prepare_for_deploy',
    'static_same_padding',
]
