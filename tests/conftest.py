"""What every test module shares."""

import os.path as osp
import sys

import pytest
from mmengine.logging import MMLogger

# pytest imports test files with --import-mode=importlib, which puts no
# test folder on sys.path: this one goes there for `from helpers import`
TESTS = osp.dirname(osp.abspath(__file__))
if TESTS not in sys.path:
    sys.path.insert(0, TESTS)


@pytest.fixture(autouse=True, scope='module')
def no_leftover_logger():
    """Building a model or a runner creates mmengine's current logger,
    bound to the module's captured stdout; drop the loggers a module made
    so that later modules log where they look."""
    before = set(MMLogger._instance_dict)
    yield
    for name in set(MMLogger._instance_dict) - before:
        del MMLogger._instance_dict[name]
