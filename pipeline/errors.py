"""The pipeline's own errors, under one root.

Every error the pipeline raises about *our* data or requests derives from
:class:`PipelineError`, so a caller can catch them in one place; each also keeps the builtin
base it always had (``ValueError`` for a bad value), so no existing ``except`` changes
meaning. Provider failures are a separate tree (``providers.errors.ProviderError``: what a
provider did, not what we were given), and so is the stored replay's ``NoStoredResponse``
(a ``providers.errors.NotAnswered``: the answer a provider client could not be given).

Exception tree (where each is defined, and what the pipeline does with it)::

    PipelineError                   root; never raised itself
    ├── EnvelopeError (ValueError)  pipeline.envelope: an envelope that cannot go to bronze;
    │                               ``reason`` + ``detail``, the message is quarantined
    ├── InvalidValue (ValueError)   pipeline.normalise.errors: a raw provider value with no
    │                               canonical form (``field``, ``value``, ``reason``); the
    │                               value is rejected with its reason, the lookup goes on
    ├── ReplayError (ValueError)    here (re-exported by pipeline.replay): a replay request
    │                               that cannot run, or replayed ids another silver track owns;
    │                               the queue row is ``failed`` with the message
    ├── ConfigError (ValueError)    pipeline.whatif.config: a what-if proposal that cannot be
    │                               simulated (unknown field or provider, bad threshold)
    └── BatchFailed                 pipeline.cli.pipeline_cmds: a batch of a CLI ingest was
                                    quarantined whole (its run is ``failed``)

``LookupError`` for an unknown id (a run, a silver track, bronze ids) stays the builtin: it is
the "no such key" answer callers already test for, not a pipeline failure.
"""

from __future__ import annotations

__all__ = ["PipelineError", "ReplayError"]


class PipelineError(Exception):
    """Root of the pipeline's own errors (see the module docstring for the tree)."""


class ReplayError(PipelineError, ValueError):
    """A replay request that cannot run (bad ids, run, fields); the message goes on the row.

    Defined here rather than in ``pipeline.replay`` so that the partial merge
    (``pipeline.merge.partial``), which ``pipeline.replay`` imports, can raise it too.
    """
