"""What a lookup takes and gives: :class:`LookupInput` and :class:`LookupOutcome`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from pipeline.matching import TrackQuery
from providers.contract import LookupResult, RawResponse

__all__ = ["Ask", "LookupInput", "LookupOutcome", "OutcomeStatus"]

#: A lookup with no answer is recorded ``failed``, or ``skipped`` (circuit open: never asked).
OutcomeStatus = Literal["failed", "skipped"]


@dataclass(frozen=True)
class LookupInput:
    """Everything a lookup task needs, read before the (slow) provider call."""

    job_id: str
    run_id: str
    bronze_id: str
    provider: str
    fields: list[str]
    query: TrackQuery
    replay_mode: str | None
    cost_per_call: Decimal


@dataclass
class LookupOutcome:
    """One lookup's answer (``result``) or why it has none (``error``), ready to record."""

    li: LookupInput
    result: LookupResult | None = None
    latency_ms: int = 0
    error: str | None = None
    status: OutcomeStatus = "failed"
    responses: Sequence[RawResponse] = ()


#: One lookup asked: its answer, raising ``ProviderError`` (or anything) when there is none.
Ask = Callable[[LookupInput], LookupResult]
