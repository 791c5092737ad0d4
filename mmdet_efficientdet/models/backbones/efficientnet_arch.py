"""EfficientNet as data: the B0 block table and the compound multipliers.

Every variant is the B0 table below decoded with a width and a depth
multiplier (Tan & Le, "EfficientNet", ICML 2019, table 1 and section 3.3),
so B0-B7 and Lite0-4 differ only in the numbers of :data:`ARCHS`.
"""

import math
from typing import Dict, List, NamedTuple, Optional, Union


class BlockRow(NamedTuple):
    """One stage of the trunk: ``repeats`` blocks of the same shape.

    ``expand_ratio == 1`` is the depthwise-separable block of stage one
    (no 1x1 expansion conv); the others are MBConv inverted residuals.
    """

    repeats: int
    kernel_size: int
    stride: int
    expand_ratio: int
    out_channels: int


# EfficientNet-B0 (paper table 1; official efficientnet_builder.py).
B0_ROWS = (
    BlockRow(1, 3, 1, 1, 16),
    BlockRow(2, 3, 2, 6, 24),
    BlockRow(2, 5, 2, 6, 40),
    BlockRow(3, 3, 2, 6, 80),
    BlockRow(3, 5, 1, 6, 112),
    BlockRow(4, 5, 2, 6, 192),
    BlockRow(1, 3, 1, 6, 320),
)
STEM_CHANNELS = 32
SE_RATIO = 0.25  # squeeze channels = block input channels * 0.25


class ArchSpec(NamedTuple):
    """Compound multipliers of one variant.

    ``lite`` selects the EfficientNet-Lite rules (official
    ``efficientnet_lite_builder.py``): no squeeze-excite, ReLU6, stem width
    not scaled, first and last stage repeats not scaled.
    """

    width: float
    depth: float
    lite: bool = False


# (width, depth) per variant; resolution and dropout are not used by a
# detection backbone (official efficientnet_builder.py and
# efficientnet_lite_builder.py).
ARCHS: Dict[str, ArchSpec] = {
    'b0': ArchSpec(1.0, 1.0),
    'b1': ArchSpec(1.0, 1.1),
    'b2': ArchSpec(1.1, 1.2),
    'b3': ArchSpec(1.2, 1.4),
    'b4': ArchSpec(1.4, 1.8),
    'b5': ArchSpec(1.6, 2.2),
    'b6': ArchSpec(1.8, 2.6),
    'b7': ArchSpec(2.0, 3.1),
    'lite0': ArchSpec(1.0, 1.0, lite=True),
    'lite1': ArchSpec(1.0, 1.1, lite=True),
    'lite2': ArchSpec(1.1, 1.2, lite=True),
    'lite3': ArchSpec(1.2, 1.4, lite=True),
    'lite4': ArchSpec(1.4, 1.8, lite=True),
}


class BlockSpec(NamedTuple):
    """One decoded block, with its absolute channel numbers."""

    in_channels: int
    out_channels: int
    mid_channels: int
    kernel_size: int
    stride: int
    se_channels: Optional[int]


def round_channels(channels: float, divisor: int = 8) -> int:
    """Round to a multiple of ``divisor``, never below 90% of the input.

    The official ``round_filters`` rule; it keeps checkpoint shapes.
    """
    rounded = max(divisor, int(channels + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * channels:
        rounded += divisor
    return rounded


def resolve_arch(arch: Union[str, dict, ArchSpec]) -> ArchSpec:
    """Turn a variant name or a ``dict(width=, depth=, lite=)`` into a spec.

    Raises:
        ValueError: for an unknown name or a non-positive multiplier.
    """
    if isinstance(arch, str):
        if arch not in ARCHS:
            raise ValueError(
                f'unknown EfficientNet arch {arch!r}; expected '
                f'one of {sorted(ARCHS)} or a dict(width=..., '
                'depth=..., lite=...)'
            )
        return ARCHS[arch]
    spec = ArchSpec(**arch) if isinstance(arch, dict) else arch
    if not isinstance(spec, ArchSpec):
        raise TypeError(f'arch must be a str, dict or ArchSpec, got {arch!r}')
    if spec.width <= 0 or spec.depth <= 0:
        raise ValueError(f'arch multipliers must be positive, got {spec}')
    return spec


def stem_channels(spec: ArchSpec) -> int:
    return (
        STEM_CHANNELS
        if spec.lite
        else round_channels(STEM_CHANNELS * spec.width)
    )


def decode_stages(spec: ArchSpec) -> List[List[BlockSpec]]:
    """Decode :data:`B0_ROWS` into the blocks of each stage of ``spec``."""
    stages = []
    in_channels = stem_channels(spec)
    last = len(B0_ROWS) - 1
    for i, row in enumerate(B0_ROWS):
        fixed_depth = spec.lite and i in (0, last)
        repeats = (
            row.repeats if fixed_depth else math.ceil(row.repeats * spec.depth)
        )
        out_channels = round_channels(row.out_channels * spec.width)
        blocks = []
        for j in range(repeats):
            block_in = in_channels if j == 0 else out_channels
            se = None if spec.lite else max(1, int(block_in * SE_RATIO))
            blocks.append(
                BlockSpec(
                    in_channels=block_in,
                    out_channels=out_channels,
                    mid_channels=block_in * row.expand_ratio,
                    kernel_size=row.kernel_size,
                    stride=row.stride if j == 0 else 1,
                    se_channels=se,
                )
            )
        stages.append(blocks)
        in_channels = out_channels
    return stages


def level_stages(stages: List[List[BlockSpec]]) -> List[int]:
    """Index of the stage whose output is each reduction level.

    Level ``i`` has stride ``2 ** (i + 1)`` (the stem gives level 0 its
    first halving); its feature is the output of the last stage before the
    next stride-2 stage. For B0: ``[0, 1, 2, 4, 6]``.
    """
    levels = []
    for i, blocks in enumerate(stages):
        if i > 0 and blocks[0].stride == 2:
            levels.append(i - 1)
    levels.append(len(stages) - 1)
    return levels
