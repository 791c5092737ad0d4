from .bifpn import BiFPNNeck
from .bifpn_graph import FusionNodeSpec, bifpn_nodes, output_indices
from .bifpn_layer import FUSION_METHODS, BiFPNLayer, FeatureFusion, FusionNode

__all__ = [
    'BiFPNNeck',
    'BiFPNLayer',
    'FUSION_METHODS',
    'FeatureFusion',
    'FusionNode',
    'FusionNodeSpec',
    'bifpn_nodes',
    'output_indices',
]
