"""Merge: resolve each field through the waterfall and write silver, with provenance.

For a job whose lookups are all done: every field takes the first provider in priority order
whose confidence meets its threshold (``pipeline.waterfall.pick_winner``); identity resolution
(ISRC, then provider ids, then the normalised artist+title key) maps the bronze row onto an
existing silver track or a new one; a ``merge`` transformation per field records the candidates,
the rule and the winner; ``field_provenance`` keeps the whole chain. Idempotent: a merged job is
not merged twice.

Modules (one job each; silver is written only by ``tracks``, ``artists`` and ``playlists``):

* ``resolve``: field resolution and coercion to column types (pure).
* ``identity``: which silver track a row belongs to (:func:`find_silver`), advisory locks.
* ``jobs``: the values passed around (:class:`MergeJob`, :class:`Choice`,
  :class:`PreparedJob`, :class:`MergeResult`).
* ``tracks``: the one silver-track writer, full mode (merges) and partial mode (replays).
* ``artists``: the one silver-artist writer (:func:`upsert_artist`, track credits).
* ``playlists``: the one silver-playlist writer (:func:`merge_playlist`), and which setlists
  are ready for it (:func:`complete_playlists`).
* ``lineage``: merge transformations, ``field_provenance``, the job's ``merged`` mark.
* ``batch``: :func:`merge_batch` (a batch in one transaction: read, decide, lock, write).
* ``partial``: :func:`merge_fields` (a partial replay's fields, through the partial mode).
"""

from __future__ import annotations

from pipeline.merge.artists import artist_to_silver, upsert_artist
from pipeline.merge.batch import merge_batch, merge_job
from pipeline.merge.identity import (
    IDENTITY_IDS,
    SilverTrack,
    bronze_ids_of,
    find_silver,
    silver_ids_for_bronze,
)
from pipeline.merge.jobs import Choice, MergeJob, MergeResult, PreparedJob
from pipeline.merge.lineage import write_merged
from pipeline.merge.partial import merge_fields
from pipeline.merge.playlists import complete_playlists, merge_playlist
from pipeline.merge.resolve import (
    TRACK_COLUMNS,
    Resolution,
    reconcile_bpm_reading,
    resolve_fields,
)

__all__ = [
    "IDENTITY_IDS",
    "TRACK_COLUMNS",
    "Choice",
    "MergeJob",
    "MergeResult",
    "PreparedJob",
    "Resolution",
    "SilverTrack",
    "artist_to_silver",
    "bronze_ids_of",
    "complete_playlists",
    "find_silver",
    "merge_batch",
    "merge_fields",
    "merge_job",
    "merge_playlist",
    "reconcile_bpm_reading",
    "resolve_fields",
    "silver_ids_for_bronze",
    "upsert_artist",
    "write_merged",
]

