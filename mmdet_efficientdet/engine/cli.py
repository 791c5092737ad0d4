"""Command-line pieces that tools/train.py, test.py share (mmdet's CLI)."""

import argparse
import os
import os.path as osp

from mmengine.config import Config, DictAction

from ..package_files import CONFIG_PREFIX, get_config_file


def add_common_args(parser: argparse.ArgumentParser) -> None:
    """``--work-dir``, ``--cfg-options``, ``--launcher``, ``--local-rank``."""
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings of the config, key=value, e.g. '
        'train_dataloader.batch_size=4',
    )
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher',
    )
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def parse_common(parser: argparse.ArgumentParser) -> argparse.Namespace:
    """Parse, and export LOCAL_RANK for launchers that only pass it."""
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def find_config(name: str) -> str:
    """A config file's path: ``name`` itself, or a packaged config
    (``mmdet_efficientdet::quickstart/...py``, see
    :func:`~mmdet_efficientdet.get_config_file`)."""
    if name.startswith(CONFIG_PREFIX):
        return get_config_file(name)
    if not osp.isfile(name):
        raise FileNotFoundError(
            f'config file {name!r} not found (a packaged config is named '
            f'{CONFIG_PREFIX}<folder>/<file>.py)'
        )
    return name


def load_config(args: argparse.Namespace) -> Config:
    """The config file merged with ``--cfg-options``, ``--work-dir`` (default
    ``work_dirs/<config name>``) and ``--launcher``."""
    args.config = find_config(args.config)
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        name = osp.splitext(osp.basename(args.config))[0]
        cfg.work_dir = osp.join('./work_dirs', name)
    return cfg
