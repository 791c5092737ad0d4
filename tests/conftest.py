"""What every test module shares."""

import pytest
from mmengine.logging import MMLogger


@pytest.fixture(autouse=True, scope='module')
def no_leftover_logger():
    """Building a model or a runner creates mmengine's current logger,
    bound to the module's captured stdout; drop the loggers a module made
    so that later modules log where they look."""
    before = set(MMLogger._instance_dict)
    yield
    for name in set(MMLogger._instance_dict) - before:
        del MMLogger._instance_dict[name]
