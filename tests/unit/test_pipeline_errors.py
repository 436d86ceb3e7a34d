"""One root for the pipeline's own errors (``pipeline.errors``), each keeping its builtin base."""

from __future__ import annotations

import pytest

from pipeline.cli.pipeline_cmds import BatchFailed
from pipeline.envelope import EnvelopeError
from pipeline.errors import PipelineError, ReplayError
from pipeline.normalise.errors import InvalidValue
from pipeline.replay import ReplayError as ReplayErrorFromReplay
from pipeline.whatif.config import ConfigError
from providers.errors import ProviderError


@pytest.mark.parametrize("cls", [EnvelopeError, InvalidValue, ReplayError, ConfigError])
def test_value_errors_of_the_pipeline_share_the_root_and_stay_value_errors(cls: type) -> None:
    """Caught by ``except PipelineError`` and, as before, by ``except ValueError``."""
    assert issubclass(cls, PipelineError) and issubclass(cls, ValueError)


def test_the_tree_in_the_docstring_is_the_tree_in_the_code() -> None:
    """Every class the docstring draws is a PipelineError; provider errors are not."""
    import pipeline.errors

    doc = pipeline.errors.__doc__ or ""
    for cls in (EnvelopeError, InvalidValue, ReplayError, ConfigError, BatchFailed):
        assert f"── {cls.__name__}" in doc
        assert issubclass(cls, PipelineError)
    assert not issubclass(ProviderError, PipelineError)
    assert ReplayErrorFromReplay is ReplayError  # the name replay's callers import is the same
    with pytest.raises(PipelineError, match="unknown field"):
        raise ConfigError("unknown field 'x'")
