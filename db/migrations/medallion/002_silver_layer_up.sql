-- 002 silver layer: one row per real-world track/artist/playlist, validated and enriched.

-- to_camelot: every key spelling providers use -> Camelot ('8A'), NULL for garbage, never an
-- error (it runs inside triggers and views, where one bad value must not fail a whole batch).
-- Accepts Camelot ('8A', '08a'), Open Key ('1m' = 8A, '1d' = 8B), and musical spellings
-- ('A minor', 'Am', 'A min', 'C# Major', 'Db major', 'Db' (bare note = major), ♯/♭, 'sharp'/'flat').
CREATE OR REPLACE FUNCTION to_camelot(value TEXT) RETURNS TEXT
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
    s       TEXT;
    m       TEXT[];
    pc      INTEGER;
    minor   BOOLEAN;
    rest    TEXT;
    n       INTEGER;
BEGIN
    s := btrim(regexp_replace(replace(replace(value, '♯', '#'), '♭', 'b'), '\s+', ' ', 'g'));
    IF s = '' OR length(s) > 40 THEN
        RETURN NULL;
    END IF;

    -- Camelot: 1..12 (optionally zero padded) + A/B.
    m := regexp_match(s, '^0?(1[0-2]|[1-9]) ?([AaBb])$');
    IF m IS NOT NULL THEN
        RETURN m[1] || upper(m[2]);
    END IF;

    -- Open Key: 1..12 + m (minor) / d (major); number = ((camelot - 8) mod 12) + 1.
    m := regexp_match(s, '^0?(1[0-2]|[1-9]) ?([MmDd])$');
    IF m IS NOT NULL THEN
        n := ((m[1]::INTEGER + 6) % 12) + 1;
        RETURN n::TEXT || CASE WHEN lower(m[2]) = 'm' THEN 'A' ELSE 'B' END;
    END IF;

    -- Musical: note letter, optional accidental, optional mode word.
    m := regexp_match(s, '^([A-Ga-g]) ?(#|b|-sharp|-flat| sharp| flat|sharp|flat)?(.*)$');
    IF m IS NULL THEN
        RETURN NULL;
    END IF;
    pc := CASE lower(m[1]) WHEN 'c' THEN 0 WHEN 'd' THEN 2 WHEN 'e' THEN 4 WHEN 'f' THEN 5
                           WHEN 'g' THEN 7 WHEN 'a' THEN 9 ELSE 11 END;
    IF m[2] IS NOT NULL THEN
        pc := pc + CASE WHEN m[2] = '#' OR m[2] LIKE '%sharp' THEN 1 ELSE -1 END;
    END IF;
    pc := (pc + 12) % 12;

    rest := btrim(m[3]);
    IF rest = 'M' THEN                      -- 'CM': capital M is the major shorthand
        minor := FALSE;
    ELSIF lower(rest) IN ('m', 'mi', 'min', 'minor', 'moll', '-', '-minor') THEN
        minor := TRUE;
    ELSIF lower(rest) IN ('', 'maj', 'major', 'ma', 'dur', '-major') THEN
        minor := FALSE;
    ELSE
        RETURN NULL;
    END IF;

    -- A minor key shares its Camelot number with its relative major, three semitones up.
    IF minor THEN
        pc := (pc + 3) % 12;
    END IF;
    -- Position on the circle of fifths (pc * 7 mod 12) -> Camelot number, C major = 8B.
    n := (((pc * 7) % 12) + 7) % 12 + 1;
    RETURN n::TEXT || CASE WHEN minor THEN 'A' ELSE 'B' END;
END;
$$;

-- Camelot neighbours in a fixed order: same key, -1, +1 (wrapping 12 <-> 1), relative
-- major/minor. Same rule as pipeline.camelot.compatible_keys.
CREATE OR REPLACE FUNCTION calculate_compatible_keys(key TEXT) RETURNS TEXT[]
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
    k      TEXT := to_camelot(key);
    n      INTEGER;
    letter TEXT;
BEGIN
    IF k IS NULL THEN
        RETURN NULL;
    END IF;
    n := left(k, length(k) - 1)::INTEGER;
    letter := right(k, 1);
    RETURN ARRAY[
        k,
        (((n + 10) % 12) + 1)::TEXT || letter,
        ((n % 12) + 1)::TEXT || letter,
        n::TEXT || CASE letter WHEN 'A' THEN 'B' ELSE 'A' END
    ];
END;
$$;

-- Quality score for rows migrated from the legacy `tracks` table: presence and validity of the
-- fields a DJ needs. Bad values lower the score; they never raise.
CREATE OR REPLACE FUNCTION calculate_legacy_quality_score(raw JSONB) RETURNS NUMERIC(3, 2)
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN raw IS NULL OR jsonb_typeof(raw) <> 'object' THEN 0.00::NUMERIC(3, 2)
    ELSE LEAST(1.00, (
          CASE WHEN coalesce(btrim(raw->>'artist'), '') <> '' THEN 0.25 ELSE 0 END
        + CASE WHEN coalesce(btrim(raw->>'title'), '') <> '' THEN 0.25 ELSE 0 END
        + CASE WHEN raw->>'bpm' ~ '^\s*[0-9]{2,3}(\.[0-9]+)?\s*$'
                    AND (raw->>'bpm')::NUMERIC BETWEEN 20 AND 300 THEN 0.20 ELSE 0 END
        + CASE WHEN to_camelot(raw->>'key') IS NOT NULL THEN 0.20 ELSE 0 END
        + CASE WHEN coalesce(raw->>'genre', raw->>'isrc', raw->>'spotify_id') IS NOT NULL
               THEN 0.10 ELSE 0 END
    ))::NUMERIC(3, 2)
    END;
$$;

CREATE OR REPLACE FUNCTION update_updated_at_column() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END;
$$;

CREATE TABLE IF NOT EXISTS silver_enriched_tracks (
    id                    UUID         NOT NULL DEFAULT gen_random_uuid(),
    bronze_id             UUID,
    additional_bronze_ids UUID[]       NOT NULL DEFAULT '{}',
    artist_name           TEXT         NOT NULL,
    track_title           TEXT         NOT NULL,
    -- Normalised "artist|title" written by the app (pipeline.matching.identity_key); the trigger
    -- fills a plain lower-case default for legacy inserts that do not know about it.
    identity_key          TEXT         NOT NULL,
    spotify_id            TEXT,
    isrc                  TEXT,
    beatport_id           TEXT,
    musicbrainz_id        TEXT,
    deezer_id             TEXT,
    tidal_id              TEXT,
    discogs_id            TEXT,
    release_date          DATE,
    duration_ms           INTEGER,
    bpm                   NUMERIC(6, 2),
    key                   TEXT,
    genre                 TEXT[],
    energy                NUMERIC(3, 2),
    valence               NUMERIC(3, 2),
    danceability          NUMERIC(3, 2),
    validation_status     TEXT         NOT NULL DEFAULT 'needs_review',
    data_quality_score    NUMERIC(3, 2),
    validation_errors     JSONB,
    validation_warnings   JSONB,
    enrichment_metadata   JSONB        NOT NULL DEFAULT '{}',
    enrichment_run_id     UUID,
    field_confidence      JSONB        NOT NULL DEFAULT '{}',
    created_at            TIMESTAMPTZ  NOT NULL DEFAULT now(),
    updated_at            TIMESTAMPTZ  NOT NULL DEFAULT now(),
    validated_at          TIMESTAMPTZ,
    enriched_at           TIMESTAMPTZ,
    CONSTRAINT pk_silver_enriched_tracks PRIMARY KEY (id),
    CONSTRAINT fk_silver_enriched_tracks_bronze_id
        FOREIGN KEY (bronze_id) REFERENCES bronze_scraped_tracks (id),
    CONSTRAINT uq_silver_enriched_tracks_identity_key UNIQUE (identity_key),
    CONSTRAINT ck_silver_enriched_tracks_bpm_range CHECK (bpm IS NULL OR bpm BETWEEN 20 AND 300),
    CONSTRAINT ck_silver_enriched_tracks_key_camelot
        CHECK (key IS NULL OR key ~ '^(1[0-2]|[1-9])[AB]$'),
    CONSTRAINT ck_silver_enriched_tracks_isrc_format
        CHECK (isrc IS NULL OR isrc ~ '^[A-Z]{2}[A-Z0-9]{3}[0-9]{7}$'),
    CONSTRAINT ck_silver_enriched_tracks_duration_positive
        CHECK (duration_ms IS NULL OR duration_ms > 0),
    CONSTRAINT ck_silver_enriched_tracks_energy_range CHECK (energy IS NULL OR energy BETWEEN 0 AND 1),
    CONSTRAINT ck_silver_enriched_tracks_valence_range
        CHECK (valence IS NULL OR valence BETWEEN 0 AND 1),
    CONSTRAINT ck_silver_enriched_tracks_danceability_range
        CHECK (danceability IS NULL OR danceability BETWEEN 0 AND 1),
    CONSTRAINT ck_silver_enriched_tracks_quality_range
        CHECK (data_quality_score IS NULL OR data_quality_score BETWEEN 0 AND 1),
    CONSTRAINT ck_silver_enriched_tracks_validation_status
        CHECK (validation_status IN ('valid', 'warning', 'needs_review', 'failed'))
);
-- Identity: one silver row per ISRC and per provider id (partial: most ids are unknown).
CREATE UNIQUE INDEX IF NOT EXISTS uq_silver_enriched_tracks_isrc
    ON silver_enriched_tracks (isrc) WHERE isrc IS NOT NULL;
CREATE UNIQUE INDEX IF NOT EXISTS uq_silver_enriched_tracks_spotify_id
    ON silver_enriched_tracks (spotify_id) WHERE spotify_id IS NOT NULL;
CREATE UNIQUE INDEX IF NOT EXISTS uq_silver_enriched_tracks_beatport_id
    ON silver_enriched_tracks (beatport_id) WHERE beatport_id IS NOT NULL;
CREATE UNIQUE INDEX IF NOT EXISTS uq_silver_enriched_tracks_musicbrainz_id
    ON silver_enriched_tracks (musicbrainz_id) WHERE musicbrainz_id IS NOT NULL;
CREATE UNIQUE INDEX IF NOT EXISTS uq_silver_enriched_tracks_deezer_id
    ON silver_enriched_tracks (deezer_id) WHERE deezer_id IS NOT NULL;
CREATE UNIQUE INDEX IF NOT EXISTS uq_silver_enriched_tracks_tidal_id
    ON silver_enriched_tracks (tidal_id) WHERE tidal_id IS NOT NULL;
CREATE UNIQUE INDEX IF NOT EXISTS uq_silver_enriched_tracks_discogs_id
    ON silver_enriched_tracks (discogs_id) WHERE discogs_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS ix_silver_enriched_tracks_bronze_id ON silver_enriched_tracks (bronze_id);
CREATE INDEX IF NOT EXISTS ix_silver_enriched_tracks_validation_status
    ON silver_enriched_tracks (validation_status);
CREATE INDEX IF NOT EXISTS ix_silver_enriched_tracks_updated_at
    ON silver_enriched_tracks (updated_at DESC);
CREATE INDEX IF NOT EXISTS ix_silver_enriched_tracks_genre
    ON silver_enriched_tracks USING gin (genre);

-- Written here, after the table, because its argument is the table's row type: the seed calls
-- calculate_enrichment_completeness(s.*). Fraction of the 8 fields a complete track has.
CREATE OR REPLACE FUNCTION calculate_enrichment_completeness(track silver_enriched_tracks)
RETURNS NUMERIC(3, 2)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    -- The declared NUMERIC(3, 2) is not enforced on a function result: cast explicitly.
    SELECT ((((track).spotify_id IS NOT NULL)::INTEGER
          + ((track).isrc IS NOT NULL)::INTEGER
          + ((track).bpm IS NOT NULL)::INTEGER
          + ((track).key IS NOT NULL)::INTEGER
          + (coalesce(cardinality((track).genre), 0) > 0)::INTEGER
          + ((track).energy IS NOT NULL)::INTEGER
          + ((track).release_date IS NOT NULL)::INTEGER
          + ((track).duration_ms IS NOT NULL)::INTEGER
           )::NUMERIC / 8)::NUMERIC(3, 2);
$$;

-- Normalise the key before the CHECK sees it ('A minor' is stored '8A'); unparseable values
-- are left alone so the CHECK rejects them loudly instead of silently storing NULL.
CREATE OR REPLACE FUNCTION silver_tracks_before_write() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.key IS NOT NULL THEN
        NEW.key := coalesce(to_camelot(NEW.key), NEW.key);
    END IF;
    IF NEW.identity_key IS NULL THEN
        NEW.identity_key := lower(NEW.artist_name) || '|' || lower(NEW.track_title);
    END IF;
    IF TG_OP = 'UPDATE' THEN
        NEW.updated_at := now();
    END IF;
    RETURN NEW;
END;
$$;
DROP TRIGGER IF EXISTS silver_enriched_tracks_before_write ON silver_enriched_tracks;
CREATE TRIGGER silver_enriched_tracks_before_write BEFORE INSERT OR UPDATE
    ON silver_enriched_tracks FOR EACH ROW EXECUTE FUNCTION silver_tracks_before_write();

CREATE TABLE IF NOT EXISTS silver_enriched_artists (
    id                     UUID        NOT NULL DEFAULT gen_random_uuid(),
    bronze_ids             UUID[]      NOT NULL DEFAULT '{}',
    canonical_name         TEXT        NOT NULL,
    aliases                TEXT[],
    normalized_name        TEXT        NOT NULL,
    spotify_id             TEXT,
    musicbrainz_id         TEXT,
    discogs_id             TEXT,
    beatport_id            TEXT,
    genres                 TEXT[],
    country                TEXT,
    bio                    TEXT,
    image_url              TEXT,
    validation_status      TEXT        NOT NULL DEFAULT 'needs_review',
    data_quality_score     NUMERIC(3, 2),
    enrichment_metadata    JSONB       NOT NULL DEFAULT '{}',
    deduplication_strategy TEXT,
    merged_artist_ids      UUID[],
    created_at             TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at             TIMESTAMPTZ NOT NULL DEFAULT now(),
    validated_at           TIMESTAMPTZ,
    enriched_at            TIMESTAMPTZ,
    CONSTRAINT pk_silver_enriched_artists PRIMARY KEY (id),
    CONSTRAINT uq_silver_enriched_artists_canonical_name UNIQUE (canonical_name),
    CONSTRAINT ck_silver_enriched_artists_quality_range
        CHECK (data_quality_score IS NULL OR data_quality_score BETWEEN 0 AND 1),
    CONSTRAINT ck_silver_enriched_artists_validation_status
        CHECK (validation_status IN ('valid', 'warning', 'needs_review', 'failed'))
);
CREATE INDEX IF NOT EXISTS ix_silver_enriched_artists_normalized_name
    ON silver_enriched_artists (normalized_name);
CREATE UNIQUE INDEX IF NOT EXISTS uq_silver_enriched_artists_spotify_id
    ON silver_enriched_artists (spotify_id) WHERE spotify_id IS NOT NULL;
CREATE UNIQUE INDEX IF NOT EXISTS uq_silver_enriched_artists_musicbrainz_id
    ON silver_enriched_artists (musicbrainz_id) WHERE musicbrainz_id IS NOT NULL;
DROP TRIGGER IF EXISTS silver_enriched_artists_updated_at ON silver_enriched_artists;
CREATE TRIGGER silver_enriched_artists_updated_at BEFORE UPDATE
    ON silver_enriched_artists FOR EACH ROW EXECUTE FUNCTION update_updated_at_column();

CREATE TABLE IF NOT EXISTS silver_enriched_playlists (
    id                  UUID        NOT NULL DEFAULT gen_random_uuid(),
    bronze_id           UUID,
    playlist_name       TEXT        NOT NULL,
    artist_id           UUID,
    artist_name         TEXT        NOT NULL,
    event_name          TEXT,
    event_date          DATE,
    event_location      TEXT,
    event_venue         TEXT,
    track_count         INTEGER,
    total_duration_ms   BIGINT,
    validation_status   TEXT        NOT NULL DEFAULT 'needs_review',
    data_quality_score  NUMERIC(3, 2),
    enrichment_metadata JSONB       NOT NULL DEFAULT '{}',
    created_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    validated_at        TIMESTAMPTZ,
    enriched_at         TIMESTAMPTZ,
    CONSTRAINT pk_silver_enriched_playlists PRIMARY KEY (id),
    CONSTRAINT fk_silver_enriched_playlists_bronze_id
        FOREIGN KEY (bronze_id) REFERENCES bronze_scraped_playlists (id),
    CONSTRAINT fk_silver_enriched_playlists_artist_id
        FOREIGN KEY (artist_id) REFERENCES silver_enriched_artists (id) ON DELETE SET NULL,
    CONSTRAINT ck_silver_enriched_playlists_track_count_positive
        CHECK (track_count IS NULL OR track_count >= 0),
    CONSTRAINT ck_silver_enriched_playlists_quality_range
        CHECK (data_quality_score IS NULL OR data_quality_score BETWEEN 0 AND 1),
    CONSTRAINT ck_silver_enriched_playlists_validation_status
        CHECK (validation_status IN ('valid', 'warning', 'needs_review', 'failed'))
);
CREATE INDEX IF NOT EXISTS ix_silver_enriched_playlists_bronze_id
    ON silver_enriched_playlists (bronze_id);
CREATE INDEX IF NOT EXISTS ix_silver_enriched_playlists_event_date
    ON silver_enriched_playlists (event_date) WHERE event_date IS NOT NULL;
DROP TRIGGER IF EXISTS silver_enriched_playlists_updated_at ON silver_enriched_playlists;
CREATE TRIGGER silver_enriched_playlists_updated_at BEFORE UPDATE
    ON silver_enriched_playlists FOR EACH ROW EXECUTE FUNCTION update_updated_at_column();

CREATE TABLE IF NOT EXISTS silver_playlist_tracks (
    playlist_id UUID        NOT NULL,
    track_id    UUID        NOT NULL,
    position    INTEGER     NOT NULL,
    cue_time_ms BIGINT,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT pk_silver_playlist_tracks PRIMARY KEY (playlist_id, track_id, position),
    CONSTRAINT fk_silver_playlist_tracks_playlist_id
        FOREIGN KEY (playlist_id) REFERENCES silver_enriched_playlists (id) ON DELETE CASCADE,
    CONSTRAINT fk_silver_playlist_tracks_track_id
        FOREIGN KEY (track_id) REFERENCES silver_enriched_tracks (id) ON DELETE CASCADE,
    CONSTRAINT ck_silver_playlist_tracks_position_positive CHECK (position >= 0)
);
CREATE INDEX IF NOT EXISTS ix_silver_playlist_tracks_track_id ON silver_playlist_tracks (track_id);
