"""Harmonic flow in SQL (``playlist_harmonic_flow``, migration 012) against a pure Python
reference written here from the README's definition, on real PostgreSQL.

Definition (README, "Harmonic flow"): transitions join the main entries of adjacent positions
p and p + 1; one counts only when both are identified tracks with a Camelot key; compatible =
same key, +/-1 on the wheel (12 wraps to 1) or the relative major/minor; flow = compatible /
counted; key_changes = counted pairs with different keys; graded = mean of 1.0 per compatible
pair and 1 - 0.2 x (steps - 1) otherwise (floor 0).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from tests.db._helpers import insert_silver_track

pytestmark = pytest.mark.db

KEYS = [f"{n}{letter}" for n in range(1, 13) for letter in "AB"]


@dataclass
class Entry:
    position: int
    role: str  # main | with
    status: str  # identified | unidentified | unresolved
    key: str | None  # of the identified track; None = keyless


def _compatible(a: str, b: str) -> bool:
    # Enumerated, not computed from a distance: the wheel neighbours and the relative key.
    na, la, nb, lb = int(a[:-1]), a[-1], int(b[:-1]), b[-1]
    if la == lb:
        return na == nb or (na % 12) + 1 == nb or (nb % 12) + 1 == na
    return na == nb


def _steps(a: str, b: str) -> int:
    na, la, nb, lb = int(a[:-1]), a[-1], int(b[:-1]), b[-1]
    around = abs(na - nb)
    return min(around, 12 - around) + (la != lb)


def reference(entries: list[Entry]) -> tuple[int, int, int, float | None, float | None]:
    """(transitions, compatible, key_changes, flow, graded) from the definition."""
    main: dict[int, Entry] = {}
    for e in entries:  # in the order sent: the first main entry at a position is the slot
        if e.role == "main" and e.position not in main:
            main[e.position] = e
    pairs = []
    for p, a in main.items():
        b = main.get(p + 1)
        if b is None or a.status != "identified" or b.status != "identified":
            continue
        if a.key is None or b.key is None:
            continue
        pairs.append((a.key, b.key))
    if not pairs:
        return 0, 0, 0, None, None
    good = sum(_compatible(a, b) for a, b in pairs)
    changes = sum(a != b for a, b in pairs)
    one, step = Decimal(1), Decimal("0.2")
    scores = [
        one if _compatible(a, b) else max(Decimal(0), one - step * (_steps(a, b) - 1))
        for a, b in pairs
    ]
    n = len(pairs)
    return n, good, changes, _half_up(Decimal(good) / n), _half_up(sum(scores) / n)


def _half_up(value: Decimal) -> float:
    # Stored as NUMERIC(3, 2): two places, halves away from zero (as PostgreSQL rounds numeric).
    return float(value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def _store(session: Session, entries: list[Entry]) -> str:
    conn = session.connection()
    playlist = conn.execute(
        text(
            "INSERT INTO silver_enriched_playlists (playlist_name, artist_name) "
            "VALUES ('flow test', 'DJ') RETURNING id"
        )
    ).scalar_one()
    for seq, e in enumerate(entries, start=1):
        track = (
            insert_silver_track(conn, "Artist", f"Track {playlist} {seq}", key=e.key)
            if e.status == "identified"
            else None
        )
        conn.execute(
            text(
                "INSERT INTO silver_playlist_tracks "
                "(playlist_id, sequence, track_id, position, entry_status, slot_role) "
                "VALUES (:p, :s, :t, :pos, :st, :r)"
            ),
            {"p": playlist, "s": seq, "t": track, "pos": e.position, "st": e.status, "r": e.role},
        )
    return str(playlist)


def _sql(session: Session, playlist: str) -> tuple[Any, ...]:
    row = session.execute(
        text("SELECT * FROM playlist_harmonic_flow(CAST(:p AS uuid))"), {"p": playlist}
    ).one()
    return (
        row.transitions,
        row.compatible,
        row.key_changes,
        None if row.flow is None else float(row.flow),
        None if row.graded is None else float(row.graded),
    )


def _random_set(rnd: random.Random) -> list[Entry]:
    entries: list[Entry] = []
    position = 0
    for _ in range(rnd.randint(0, 14)):
        roll = rnd.random()
        if entries and roll < 0.15:  # w/ slot or repeated position
            entries.append(Entry(position, "with", "identified", rnd.choice(KEYS)))
            continue
        position += 2 if roll > 0.93 else 1  # now and then a gap in the numbering
        status = rnd.choices(["identified", "unidentified", "unresolved"], [8, 2, 1])[0]
        key = rnd.choice([*KEYS, None]) if status == "identified" else None
        entries.append(Entry(position, "main", status, key))
    if rnd.random() < 0.1:
        rnd.shuffle(entries)  # sent out of order now and then
    return entries


def test_sql_matches_the_reference_on_random_sets(db_session: Session) -> None:
    """300 random sets (seeded): gaps, w/ slots, unidentified, unresolved, keyless tracks."""
    rnd = random.Random(20261204)
    checked = 0
    for _ in range(300):
        entries = _random_set(rnd)
        assert _sql(db_session, _store(db_session, entries)) == reference(entries), entries
        checked += 1
    assert checked == 300


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        # The case: an ID row between two tracks is no transition.
        (["8A", None, "8A"], (0, 0, 0, None, None)),
        (["8A", "9A", "10A", "10B"], (3, 3, 3, 1.0, 1.0)),
        (["12A", "1A", "1B", "3B"], (3, 2, 3, 0.67, round((1 + 1 + 0.8) / 3, 2))),
        (["1A", "7B"], (1, 0, 1, 0.0, 0.0)),  # seven steps: graded floor 0
        (["5A"], (0, 0, 0, None, None)),
    ],
)
def test_hand_computed_sets(
    db_session: Session, keys: list[str | None], expected: tuple[Any, ...]
) -> None:
    """Small sets worked out by hand (None = an unidentified position)."""
    entries = [
        Entry(i, "main", "identified" if k else "unidentified", k)
        for i, k in enumerate(keys, start=1)
    ]
    assert reference(entries) == expected
    assert _sql(db_session, _store(db_session, entries)) == expected


def test_camelot_distance_in_sql_matches_python(db_session: Session) -> None:
    """camelot_key_distance over all 576 key pairs equals pipeline.camelot.key_distance, and
    is NULL for anything that is not a Camelot code."""
    from pipeline.camelot import key_distance

    rows = db_session.execute(
        text(
            "SELECT a, b, camelot_key_distance(a, b) FROM unnest(CAST(:k AS text[])) a, "
            "unnest(CAST(:k AS text[])) b"
        ),
        {"k": KEYS},
    ).all()
    assert len(rows) == 576
    assert all(d == key_distance(a, b) for a, b, d in rows)
    bad = db_session.execute(
        text("SELECT camelot_key_distance('13A', '1A'), camelot_key_distance('Am', '8A')")
    ).one()
    assert tuple(bad) == (None, None)
