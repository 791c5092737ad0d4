import pytest
from mmengine.logging import MMLogger


@pytest.fixture(autouse=True, scope='module')
def no_leftover_logger():
    """Registry builds create mmengine's current logger bound to this
    module's captured stdout; drop it so later tests log where they look."""
    before = set(MMLogger._instance_dict)
    yield
    for name in set(MMLogger._instance_dict) - before:
        del MMLogger._instance_dict[name]
