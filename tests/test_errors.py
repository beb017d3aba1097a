import pytest

import xmodal
from xmodal.errors import DataError, ParameterError, XmodalError


def test_hierarchy():
    assert issubclass(ParameterError, XmodalError)
    assert issubclass(ParameterError, ValueError)
    assert issubclass(DataError, XmodalError)
    assert not issubclass(DataError, ValueError)


def test_one_except_catches_every_xmodal_error():
    for cls in (ParameterError, DataError):
        with pytest.raises(XmodalError, match="the value"):
            raise cls("names the value")


def test_exported_at_top_level():
    assert xmodal.ParameterError is ParameterError
    assert xmodal.DataError is DataError
    assert xmodal.__version__ != "0+unknown"
