from .anchor_generator import TF_ASPECTS, EfficientDetAnchorGenerator
from .assigner import EfficientDetAssigner

__all__ = ['EfficientDetAnchorGenerator', 'EfficientDetAssigner', 'TF_ASPECTS']
