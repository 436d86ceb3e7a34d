"""The values merge passes between its modules and to its callers: the job row it merges
(:class:`MergeJob`), what was chosen for its fields (:class:`Choice`, what lineage records), a
job's merge decided in memory (:class:`PreparedJob`) and what a merge produced
(:class:`MergeResult`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Row

from pipeline.matching import artist_key
from pipeline.merge.identity import IDENTITY_IDS
from pipeline.waterfall import Outcome, Plan, Winner

__all__ = ["Choice", "MergeJob", "MergeResult", "PreparedJob"]


def _str(value: object) -> str | None:
    return None if value is None else str(value)


@dataclass(frozen=True, slots=True)
class MergeJob:
    """An enrichment job with the bronze row it merges (merge's job query; a partial replay
    reads fewer columns, the others stay None). Ids are text."""

    id: str
    run_id: str
    bronze_track_id: str
    status: str
    source: str
    fields: list[str] | None = None
    silver_track_id: str | None = None
    raw_json: Any = None
    artist_name: str | None = None
    track_title: str | None = None
    playlist_id: str | None = None
    replay_mode: str | None = None
    #: Issue 17: fields identity-first found fresh on ``reuse_silver_id``.
    reused_fields: list[str] | None = None
    reuse_silver_id: str | None = None

    @classmethod
    def from_row(cls, row: Row[Any]) -> MergeJob:
        """The job of a result row with (some of) these columns."""
        m = row._mapping
        return cls(
            id=str(m["id"]),
            run_id=str(m["run_id"]),
            bronze_track_id=str(m["bronze_track_id"]),
            status=m["status"],
            source=m["source"],
            fields=m.get("fields"),
            silver_track_id=_str(m.get("silver_track_id")),
            raw_json=m.get("raw_json"),
            artist_name=m.get("artist_name"),
            track_title=m.get("track_title"),
            playlist_id=_str(m.get("playlist_id")),
            replay_mode=m.get("replay_mode"),
            reused_fields=m.get("reused_fields"),
            reuse_silver_id=_str(m.get("reuse_silver_id")),
        )


@dataclass(frozen=True)
class MergeResult:
    """What a merge produced; the caller enqueues gold and playlist merges after commit."""

    silver_track_id: str | None = None
    bronze_playlist_ids: list[str] = field(default_factory=list)
    run_finished: bool = False
    already_merged: bool = False
    #: Issue 17: every field reused, the bronze row only linked (its gold row is unchanged
    #: unless a playlist merge counts the appearance).
    linked_only: bool = False


@dataclass(frozen=True)
class Choice:
    """What a merge chose for a job's fields: the column values and their confidences, each
    field's winner among the outcomes considered, and the rule recorded per written field."""

    values: dict[str, Any]
    confidences: dict[str, float | None]
    winners: dict[str, Winner]
    outcomes: list[Outcome]
    rules: dict[str, dict[str, Any]]


@dataclass(frozen=True)
class PreparedJob(Choice):
    """A job's merge decided in memory (its :class:`Choice`, lock keys), before any write."""

    job: MergeJob
    plan: Plan
    metadata: dict[str, Any]
    warnings: list[dict[str, str]]  # the silver writer adds identity conflicts
    ikey: str
    artist_names: list[str]

    @property
    def linked_only(self) -> bool:
        """Issue 17: every field reused, nothing chosen: the job only links its bronze row."""
        return self.job.reuse_silver_id is not None and not self.rules

    def lock_keys(self, existing_artists: Mapping[str, str]) -> list[str]:
        """Advisory lock keys this job's writes need. An artist that already exists needs
        none: it is only linked, never created or changed, and artists are never deleted.
        (Locking every credited artist made concurrent batches that share one popular artist
        wait for each other's whole merge.)"""
        if self.linked_only:
            return []  # issue 17: creates nothing; the row lock of its final link suffices
        keys = [f"track:{self.ikey}"]
        keys += [f"{col}:{self.values[col]}" for col in IDENTITY_IDS if self.values.get(col)]
        keys += [
            f"artist:{key}"
            for key in map(artist_key, self.artist_names)
            if key not in existing_artists
        ]
        return keys
