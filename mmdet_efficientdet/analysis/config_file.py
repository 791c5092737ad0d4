"""Write a config file that scales a base config to a compound coefficient.

The file has the shape of ``configs/efficientdet/*``: ``_base_`` first (an
mmengine config that starts with an import is read as a pure-Python
config), the import, and ``globals().update(scaled_config(_base_, X))`` -
the scaling module writes every number the coefficient decides.
"""

import os
import os.path as osp
from typing import Optional, Sequence

from ..scaling import OFFICIAL_BY_PHI


def variant_literal(phi: float) -> str:
    """``'d3'`` for a table entry, the number itself otherwise."""
    if float(phi).is_integer() and int(phi) in OFFICIAL_BY_PHI:
        return repr(OFFICIAL_BY_PHI[int(phi)].name)
    return repr(float(phi))


def base_reference(base_config: str, out_path: str) -> str:
    """``_base_`` of ``out_path``: relative when both share a folder above
    the root (e.g. the repository), absolute otherwise."""
    base = osp.abspath(base_config)
    out_dir = osp.dirname(osp.abspath(out_path))
    if osp.commonpath([base, out_dir]) == osp.sep:
        return base
    return osp.relpath(base, out_dir)


def write_scaled_config(
    out_path: str,
    base_config: str,
    phi: float,
    comment: Sequence[str] = (),
    num_classes: Optional[int] = None,
) -> str:
    """Write the config of ``base_config`` scaled to ``phi``.

    Args:
        out_path (str): The file to write (folders are created).
        base_config (str): The config to inherit, e.g. D0's.
        phi (float): Compound coefficient (table entry at 0-7).
        comment (sequence[str]): Lines of the header comment.
        num_classes (int, optional): Set the head's classes too.

    Returns:
        str: ``out_path``.
    """
    if not osp.isfile(base_config):
        raise FileNotFoundError(f'base config {base_config!r} not found')
    lines = [f'# {line}'.rstrip() for line in comment]
    lines += [
        f'_base_ = {base_reference(base_config, out_path)!r}',
        'from mmdet_efficientdet.scaling import scaled_config  # noqa: E402',
        '',
        f'globals().update(scaled_config(_base_, {variant_literal(phi)}))',
    ]
    if num_classes is not None:
        lines.append(f"model['bbox_head']['num_classes'] = {num_classes}")
    out_dir = osp.dirname(osp.abspath(out_path))
    os.makedirs(out_dir, exist_ok=True)
    with open(out_path, 'w', encoding='utf-8') as f:
        f.write('\n'.join(lines) + '\n')
    return out_path
