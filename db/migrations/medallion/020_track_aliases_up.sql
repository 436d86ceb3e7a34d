-- 020 up: names a track was sighted under, as identity keys (issue 17).
-- Identity-first planning matches a bronze row to silver by ISRC, provider ids or the identity
-- key of its names. A name a provider resolved to an existing track (same ISRC, another
-- spelling) matched nothing the next time, so every sighting under that name asked every
-- provider again (bench/sightings at 20k rows: 4,027 calls in a pass of re-scrapes). Merge
-- records the key here; identity-first and merge find the track by it after the track's own key.
CREATE TABLE IF NOT EXISTS silver_track_aliases (
    identity_key TEXT        PRIMARY KEY,
    track_id     UUID        NOT NULL REFERENCES silver_enriched_tracks (id) ON DELETE CASCADE,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS ix_silver_track_aliases_track_id ON silver_track_aliases (track_id);
