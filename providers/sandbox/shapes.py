"""Render a catalogue track in each provider's native response shape and spelling."""

from __future__ import annotations

from typing import Any

from pipeline.normalise.keys import (
    camelot_to_open_key,
    camelot_to_pitch_class,
    key_name,
    try_camelot,
)
from providers.sandbox.catalogue import SandboxTrack

__all__ = [
    "acousticbrainz_high",
    "acousticbrainz_low",
    "beatport_track",
    "deezer_album",
    "deezer_search_item",
    "deezer_track",
    "discogs_release",
    "discogs_search_item",
    "getsongbpm_song",
    "lastfm_track",
    "musicbrainz_recording",
    "spotify_audio_features",
    "spotify_track",
    "tidal_track",
]

_TIDAL_NOTES = {"#": "Sharp", "b": "b"}


def _num(text: str) -> Any:
    """A number when the catalogue holds one; the raw string otherwise (to serve bad data)."""
    if text == "":
        return None
    try:
        value = float(text)
    except ValueError:
        return text
    return int(value) if value.is_integer() else value


def _int(text: str) -> Any:
    value = _num(text)
    return round(value) if isinstance(value, float) else value


def _key_parts(t: SandboxTrack, provider: str) -> tuple[str | None, str]:
    raw = t.get(provider, "key")
    return try_camelot(raw) if raw else None, raw


def _note_and_scale(code: str) -> tuple[str, str]:
    name, scale = key_name(code).split(" ")
    return name, scale


def _artists(t: SandboxTrack, provider: str) -> list[str]:
    return [a.strip() for a in t.get(provider, "artist").split(" & ") if a.strip()]


def _duration_ms(t: SandboxTrack, provider: str) -> Any:
    return _int(t.get(provider, "duration_ms"))


# --- Beatport v4 ----------------------------------------------------------------------------------
def beatport_track(t: SandboxTrack) -> dict[str, Any]:
    p = "beatport"
    code, raw = _key_parts(t, p)
    key: dict[str, Any] | None = None
    if code:
        name, scale = _note_and_scale(code)
        key = {
            "id": int(code[:-1]) * 2 + (code[-1] == "B"),
            "name": f"{name} {scale.capitalize()}",
            "letter": name[0],
            "camelot_number": int(code[:-1]),
            "camelot_letter": code[-1],
            "chord_type": {"id": 1 if scale == "major" else 2, "name": scale.capitalize()},
            "is_sharp": "#" in name,
            "is_flat": "b" in name[1:],
        }
    elif raw:
        key = {"name": raw}
    ms = _duration_ms(t, p)
    return {
        "id": int(t.provider_id(p)),
        "name": t.get(p, "title"),
        "mix_name": "Original Mix",
        "artists": [
            {"id": i + 1, "name": a, "slug": a.lower()} for i, a in enumerate(_artists(t, p))
        ],
        "remixers": [],
        "bpm": _int(t.get(p, "bpm")),
        "key": key,
        "genre": {"id": 5, "name": t.get(p, "genre"), "slug": t.get(p, "genre").lower()},
        "sub_genre": None,
        "isrc": t.get(p, "isrc") or None,
        "length": f"{ms // 60000}:{ms // 1000 % 60:02d}" if isinstance(ms, int) else None,
        "length_ms": ms,
        "publish_date": t.get(p, "release_date"),
        "new_release_date": t.get(p, "release_date"),
        "release": {
            "id": int(t.provider_id(p)) + 1,
            "name": t.get(p, "title"),
            "label": {"id": 77, "name": t.get(p, "label"), "slug": t.get(p, "label").lower()},
        },
    }


# --- Spotify --------------------------------------------------------------------------------------
def spotify_track(t: SandboxTrack) -> dict[str, Any]:
    p = "spotify"
    sid = t.provider_id(p)
    return {
        "id": sid,
        "name": t.get(p, "title"),
        "type": "track",
        "uri": f"spotify:track:{sid}",
        "artists": [
            {"id": f"ar{sid[:20]}{i}", "name": a, "uri": f"spotify:artist:ar{sid[:20]}{i}"}
            for i, a in enumerate(_artists(t, p))
        ],
        "album": {
            "id": f"al{sid[:20]}",
            "name": t.get(p, "title"),
            "album_type": "single",
            "release_date": t.get(p, "release_date"),
            "release_date_precision": "day",
            "images": [],
        },
        "duration_ms": _duration_ms(t, p),
        "explicit": False,
        "external_ids": {"isrc": t.get(p, "isrc")},
        "preview_url": None,
    }


def spotify_audio_features(t: SandboxTrack) -> dict[str, Any]:
    p = "spotify"
    code, _ = _key_parts(t, p)
    pc, mode = camelot_to_pitch_class(code) if code else (-1, 1)
    sid = t.provider_id(p)
    return {
        "id": sid,
        "type": "audio_features",
        "uri": f"spotify:track:{sid}",
        "tempo": _num(t.get(p, "bpm")),
        "key": pc,
        "mode": mode,
        "energy": _num(t.get(p, "energy")),
        "danceability": _num(t.get(p, "danceability")),
        "valence": _num(t.get(p, "valence")),
        "duration_ms": _duration_ms(t, p),
        "time_signature": 4,
    }


# --- MusicBrainz ----------------------------------------------------------------------------------
def musicbrainz_recording(t: SandboxTrack, *, score: int | None = None) -> dict[str, Any]:
    p = "musicbrainz"
    artists = _artists(t, p)
    rec: dict[str, Any] = {
        "id": t.provider_id(p),
        "title": t.get(p, "title"),
        "length": _duration_ms(t, p),
        "video": False,
        "artist-credit": [
            {"name": a, "joinphrase": " & " if i < len(artists) - 1 else "", "artist": {"name": a}}
            for i, a in enumerate(artists)
        ],
        "first-release-date": t.get(p, "release_date"),
        "isrcs": [t.get(p, "isrc")] if t.get(p, "isrc") else [],
        "genres": [{"name": t.get(p, "genre").lower(), "count": 3}] if t.get(p, "genre") else [],
    }
    if score is not None:
        rec["score"] = score
    return rec


# --- Discogs --------------------------------------------------------------------------------------
def _discogs_release_title(t: SandboxTrack) -> str:
    # ``discogs.release_title``: the track sits on an EP/album of another name (as most do).
    return t.get("discogs", "release_title") or t.get("discogs", "title")


def discogs_search_item(t: SandboxTrack) -> dict[str, Any]:
    p = "discogs"
    rid = int(t.provider_id(p))
    return {
        "id": rid,
        "type": "release",
        "title": f"{t.get(p, 'artist')} - {_discogs_release_title(t)}",
        "year": t.get(p, "release_date")[:4],
        "genre": ["Electronic"],
        "style": [t.get(p, "genre")],
        "label": [t.get(p, "label")],
        "resource_url": f"/releases/{rid}",
    }


def discogs_release(t: SandboxTrack) -> dict[str, Any]:
    p = "discogs"
    ms = _duration_ms(t, p)
    date = t.get(p, "release_date")
    release_title = _discogs_release_title(t)
    # On a release of another name, the title track comes first and ours is the B-side.
    title_track = (
        [{"position": "A1", "type_": "track", "title": release_title, "duration": "6:02"}]
        if release_title != t.get(p, "title")
        else []
    )
    return {
        "id": int(t.provider_id(p)),
        "title": release_title,
        "artists": [{"name": a, "anv": "", "join": "&", "id": 1} for a in _artists(t, p)],
        "labels": [{"name": t.get(p, "label"), "catno": "SN001", "id": 9}],
        "genres": ["Electronic"],
        "styles": [t.get(p, "genre")],
        "year": int(date[:4]) if date[:4].isdigit() else 0,
        "released": date,
        "tracklist": [
            *title_track,
            {
                "position": "B1" if title_track else "A1",
                "type_": "track",
                "title": t.get(p, "title"),
                "duration": f"{ms // 60000}:{ms // 1000 % 60:02d}" if isinstance(ms, int) else "",
            }
        ],
        "identifiers": [],
    }


# --- Last.fm --------------------------------------------------------------------------------------
def lastfm_track(t: SandboxTrack) -> dict[str, Any]:
    p = "lastfm"
    genre = t.get(p, "genre")
    if t.get(p, "placeholder") in ("1", "true", "yes"):
        # What Last.fm answers for a name it does not really know: the request echoed back.
        return {
            "track": {
                "name": t.get(p, "title"),
                "url": "https://www.last.fm/music/_/_",
                "duration": "0",
                "streamable": {"#text": "0", "fulltrack": "0"},
                "listeners": "2",
                "playcount": "3",
                "artist": {"name": t.get(p, "artist"), "url": "https://www.last.fm/music/_"},
                "toptags": {"tag": []},
            }
        }
    return {
        "track": {
            "name": t.get(p, "title"),
            "mbid": "",
            "duration": str(_duration_ms(t, p) or 0),
            "listeners": "1234",
            "playcount": t.get(p, "play_count") or str(1000 + t.index * 7),
            "artist": {"name": t.get(p, "artist"), "mbid": ""},
            "toptags": {"tag": [{"name": g.strip()} for g in genre.split(";") if g.strip()]},
        }
    }


# --- AcousticBrainz -------------------------------------------------------------------------------
def acousticbrainz_low(t: SandboxTrack) -> dict[str, Any]:
    p = "acousticbrainz"
    code, raw = _key_parts(t, p)
    note, scale = _note_and_scale(code) if code else (raw, "")
    return {
        "rhythm": {"bpm": _num(t.get(p, "bpm"))},
        "tonal": {"key_key": note, "key_scale": scale, "key_strength": 0.7},
        "metadata": {
            "tags": {
                "artist": [t.get(p, "artist")],
                "title": [t.get(p, "title")],
                "musicbrainz_recordingid": [t.provider_id("musicbrainz")],
            }
        },
    }


def acousticbrainz_high(t: SandboxTrack) -> dict[str, Any]:
    p = "acousticbrainz"
    dance = _num(t.get(p, "danceability")) or 0.5
    energy = _num(t.get(p, "energy")) or 0.5
    return {
        "highlevel": {
            "danceability": {
                "value": "danceable",
                "probability": dance,
                "all": {"danceable": dance, "not_danceable": 1 - dance},
            },
            "mood_relaxed": {
                "value": "not_relaxed",
                "probability": energy,
                "all": {"relaxed": round(1 - energy, 4), "not_relaxed": energy},
            },
        }
    }


# --- Deezer ---------------------------------------------------------------------------------------
def deezer_search_item(t: SandboxTrack) -> dict[str, Any]:
    p = "deezer"
    ms = _duration_ms(t, p)
    return {
        "id": int(t.provider_id(p)),
        "title": t.get(p, "title"),
        "title_short": t.get(p, "title"),
        "duration": round(ms / 1000) if isinstance(ms, int) else ms,
        "rank": 500000,
        "artist": {"id": 10 + t.index, "name": t.get(p, "artist")},
        "album": {"id": 5_000_000 + t.index, "title": t.get(p, "title")},
        "type": "track",
    }


def deezer_track(t: SandboxTrack) -> dict[str, Any]:
    p = "deezer"
    bpm = _num(t.get(p, "bpm"))
    return {
        **deezer_search_item(t),
        "isrc": t.get(p, "isrc"),
        "release_date": t.get(p, "release_date"),
        "bpm": float(bpm) if isinstance(bpm, int | float) else (bpm if bpm is not None else 0),
        "gain": -9.1,
        "contributors": [{"id": 10 + t.index, "name": a} for a in _artists(t, p)],
    }


def deezer_album(t: SandboxTrack) -> dict[str, Any]:
    p = "deezer"
    return {
        "id": 5_000_000 + t.index,
        "title": t.get(p, "title"),
        "label": t.get(p, "label"),
        "genres": {"data": [{"id": 113, "name": "Dance"}, {"id": 106, "name": t.get(p, "genre")}]},
        "release_date": t.get(p, "release_date"),
    }


# --- GetSongBPM -----------------------------------------------------------------------------------
def getsongbpm_song(t: SandboxTrack) -> dict[str, Any]:
    p = "getsongbpm"
    code, raw = _key_parts(t, p)
    key_of, open_key = raw, ""
    if code:
        note, scale = _note_and_scale(code)
        key_of = note + ("m" if scale == "minor" else "")
        open_key = camelot_to_open_key(code)
    return {
        "id": t.provider_id(p),
        "title": t.get(p, "title"),
        "uri": f"https://getsongbpm.com/song/{t.provider_id(p)}",
        "tempo": t.get(p, "bpm"),
        "time_sig": "4/4",
        "key_of": key_of,
        "open_key": open_key,
        "artist": {"id": "a1", "name": t.get(p, "artist"), "genres": [t.get(p, "genre")]},
        "album": {"title": t.get(p, "title"), "year": t.get(p, "release_date")[:4]},
    }


# --- TIDAL ----------------------------------------------------------------------------------------
def tidal_track(t: SandboxTrack) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(track resource, included artist resources)."""
    p = "tidal"
    code, raw = _key_parts(t, p)
    key, scale = raw, None
    if code:
        note, sc = _note_and_scale(code)
        key = note[0] + ("Sharp" if "#" in note else "b" if len(note) > 1 else "")
        scale = sc.upper()
    ms = _duration_ms(t, p)
    artists = [
        {"id": f"{t.index}{i}", "type": "artists", "attributes": {"name": a}}
        for i, a in enumerate(_artists(t, p))
    ]
    track = {
        "id": t.provider_id(p),
        "type": "tracks",
        "attributes": {
            "title": t.get(p, "title"),
            "isrc": t.get(p, "isrc"),
            "duration": f"PT{ms // 60000}M{ms // 1000 % 60}S" if isinstance(ms, int) else ms,
            "bpm": _num(t.get(p, "bpm")),
            "key": key or "UNKNOWN",
            "keyScale": scale or "UNKNOWN",
            "explicit": False,
            "popularity": 0.5,
        },
        "relationships": {
            "artists": {"data": [{"id": a["id"], "type": "artists"} for a in artists]}
        },
    }
    return track, artists
