"""Per-provider behaviour knobs and request accounting for the sandbox."""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass, field, fields
from typing import Any

__all__ = ["Knobs", "Stats", "parse_knobs"]


@dataclass
class Knobs:
    """How one sandbox provider behaves. Every field can be changed at runtime."""

    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    # kind -> probability; kinds: "500", "timeout", "malformed" (truncated JSON), "html".
    errors: dict[str, float] = field(default_factory=dict)
    # Requests per second beyond which the provider answers with its own throttle signal.
    rate_limit_per_second: float | None = None
    # Server-side clock allowance: requests recorded by a client limiter up to this much less
    # than a second apart still count as separate windows (network/scheduling jitter).
    rate_limit_tolerance_ms: float = 0.0
    down: bool = False
    # Spotify audio-features: False answers 403 as it does for a new app.
    audio_features: bool = False
    timeout_s: float = 30.0

    def delay_s(self, rng: random.Random) -> float:
        jitter = rng.uniform(-self.jitter_ms, self.jitter_ms) if self.jitter_ms else 0.0
        return max(0.0, self.latency_ms + jitter) / 1000.0

    def pick_error(self, rng: random.Random) -> str | None:
        roll = rng.random()
        acc = 0.0
        for kind, p in self.errors.items():
            acc += p
            if roll < acc:
                return kind
        return None


_KNOB_NAMES = {f.name for f in fields(Knobs)}


def parse_knobs(raw: dict[str, Any], base: Knobs | None = None) -> Knobs:
    """Knobs from a JSON object, starting from ``base``; unknown names raise ValueError."""
    unknown = set(raw) - _KNOB_NAMES
    if unknown:
        raise ValueError(f"unknown knobs: {sorted(unknown)}")
    values = asdict(base or Knobs())
    values.update(raw)
    return Knobs(**values)


class Stats:
    """Counts requests and over-limit requests per provider; also the sliding window log."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: dict[str, int] = {}
        self.over_limit: dict[str, int] = {}
        self.errors: dict[str, int] = {}
        # GET answers (200/404) per request (path + sorted query): the same question answered
        # more than once is a provider asked twice (the chaos harness's measure, issue 20).
        self._answers: dict[str, dict[str, int]] = {}
        self._answered_at: dict[str, dict[str, list[float]]] = {}
        self._log: dict[str, deque[float]] = {}

    def count(self, provider: str) -> None:
        with self._lock:
            self.requests[provider] = self.requests.get(provider, 0) + 1

    def admit(self, provider: str, knobs: Knobs) -> bool:
        """Record one rate-limited request; False if it is over the provider's limit."""
        limit = knobs.rate_limit_per_second
        if not limit:
            return True
        now = time.monotonic()
        window = max(0.0, 1.0 - knobs.rate_limit_tolerance_ms / 1000.0)
        capacity = max(1, int(limit)) if limit >= 1 else 1
        span = window if limit >= 1 else window / limit
        with self._lock:
            log = self._log.setdefault(provider, deque())
            while log and now - log[0] >= span:
                log.popleft()
            if len(log) >= capacity:
                self.over_limit[provider] = self.over_limit.get(provider, 0) + 1
                return False
            log.append(now)
            return True

    def answer(self, provider: str, request_key: str) -> None:
        """Record that ``provider`` answered ``request_key`` (a GET's path and sorted query)."""
        now = time.time()
        with self._lock:
            answers = self._answers.setdefault(provider, {})
            answers[request_key] = answers.get(request_key, 0) + 1
            when = self._answered_at.setdefault(provider, {}).setdefault(request_key, [])
            if len(when) < 4:  # enough to tell when a question was asked again
                when.append(now)

    def forget_answers(self) -> None:
        """Start counting repeated answers afresh (a new chaos run asks about its own tracks,
        which an earlier run may have asked about too)."""
        with self._lock:
            self._answers.clear()
            self._answered_at.clear()

    def repeated(self) -> dict[str, dict[str, list[float]]]:
        """provider -> {request answered more than once: when it was answered (epoch seconds,
        the first four)}: what was asked twice, for a chaos run's log."""
        with self._lock:
            return {
                p: {k: list(self._answered_at[p][k]) for k, n in answers.items() if n > 1}
                for p, answers in self._answers.items()
                if any(n > 1 for n in answers.values())
            }

    def error(self, provider: str) -> None:
        with self._lock:
            self.errors[provider] = self.errors.get(provider, 0) + 1

    def snapshot(self) -> dict[str, dict[str, int]]:
        with self._lock:
            names = set(self.requests) | set(self.over_limit)
            return {
                p: {
                    "requests": self.requests.get(p, 0),
                    "over_limit": self.over_limit.get(p, 0),
                    "errors": self.errors.get(p, 0),
                    "answered": sum(self._answers.get(p, {}).values()),
                    "answered_again": sum(n - 1 for n in self._answers.get(p, {}).values()),
                }
                for p in sorted(names)
            }
