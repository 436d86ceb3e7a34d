"""The lookup engine (issue #16): one way to ask a provider about a job, with two drivers.

The Celery fan-out (``tasks.enrich.lookup``, a thin task) and replay
(``pipeline.replay.process_live``) both ask through :mod:`pipeline.lookups.engine`:

* :mod:`~pipeline.lookups.outcome`: what goes in and comes out (``LookupInput``,
  ``LookupOutcome``), typed;
* :mod:`~pipeline.lookups.clients`: one client per provider per process, built with its
  limits, breaker and health callback, and the answerer choice (live, scraper, stored) behind
  one ``ask(input) -> LookupOutcome``;
* :mod:`~pipeline.lookups.journal`: each answer written to PostgreSQL as it arrives, so a
  lookup that already has its provider's answer never asks again;
* :mod:`~pipeline.lookups.engine`: the thread pool (``run_lookups``), the retry countdown,
  leases and the batch recorder.

Submodules are imported by name (``from pipeline.lookups.engine import ...``): this module
imports none of them, so ``pipeline.enrich`` can use the journal without an import cycle.
"""

__all__: list[str] = []
