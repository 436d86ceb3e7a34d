"""The sandbox ASGI app: every provider's endpoints under ``/<provider>/...``.

Each request passes the provider's knobs in order: ``down`` (503), latency, injected errors
(500, timeout, truncated JSON, HTML page), then the rate limit, answered with that API's own
throttle signal. ``GET /_sandbox/stats`` and ``POST /_sandbox/config`` control it at runtime.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import re
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from providers.sandbox import shapes
from providers.sandbox.catalogue import Catalogue
from providers.sandbox.knobs import Knobs, Stats, parse_knobs

__all__ = ["PROVIDERS", "SandboxState", "build_app"]

PROVIDERS = (
    "beatport",
    "spotify",
    "musicbrainz",
    "discogs",
    "lastfm",
    "acousticbrainz",
    "deezer",
    "getsongbpm",
    "tidal",
)
Handler = Callable[[Request], Awaitable[Response]]
#: Ids per AcousticBrainz bulk request (the old API's limit).
AB_BULK_MAX = 25
_HTML = "<html><head><title>502 Bad Gateway</title></head><body><h1>502</h1></body></html>"
_SPOTIFY_ID = re.compile(r"^[0-9A-Za-z]{22}$")  # base-62, as Spotify track ids are


class SandboxState:
    def __init__(self, catalogue: Catalogue, knobs: dict[str, Knobs], seed: int = 0) -> None:
        self.catalogue = catalogue
        self.knobs = {p: knobs.get(p, knobs.get("*", Knobs())) for p in PROVIDERS}
        self.stats = Stats()
        self.rng = random.Random(seed)
        self._tokens = itertools.count(1)

    def token(self) -> str:
        return f"sandbox-token-{next(self._tokens)}"


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse(body, status_code=status, headers=headers)


def _throttle(provider: str) -> Response:
    if provider == "musicbrainz":
        return _json({"error": "Your requests are exceeding the allowable rate limit."}, 503)
    if provider == "lastfm":
        return _json({"error": 29, "message": "Rate Limit Exceeded"})
    if provider == "deezer":
        return _json({"error": {"type": "Exception", "message": "Quota limit exceeded", "code": 4}})
    body: Any = {"message": "You are making requests too quickly."}
    headers = {"Retry-After": "1"}
    if provider == "spotify":
        body = {
            "error": {"status": 429, "message": "Too many requests", "reason": "QUOTA_EXCEEDED"}
        }
    if provider == "discogs":
        headers.update({"X-Discogs-Ratelimit": "60", "X-Discogs-Ratelimit-Remaining": "0"})
    return _json(body, 429, headers)


def _guard(
    state: SandboxState, provider: str, handler: Handler, *, limited: bool = True
) -> Handler:
    async def endpoint(request: Request) -> Response:
        knobs = state.knobs[provider]
        state.stats.count(provider)
        if knobs.down:
            state.stats.error(provider)
            return Response("Service Unavailable", 503, media_type="text/plain")
        delay = knobs.delay_s(state.rng)
        if delay:
            await asyncio.sleep(delay)
        kind = knobs.pick_error(state.rng)
        if kind is not None:
            state.stats.error(provider)
            if kind == "timeout":
                await asyncio.sleep(knobs.timeout_s)
                return Response("", 504)
            if kind == "malformed":
                return Response('{"data": [{"id": 1, "tit', 200, media_type="application/json")
            if kind == "html":
                return Response(_HTML, 502, media_type="text/html")
            return Response("Internal Server Error", 500, media_type="text/plain")
        if limited and not state.stats.admit(provider, knobs):
            return _throttle(provider)
        response = await handler(request)
        if request.method == "GET" and response.status_code in (200, 404):
            query = "&".join(sorted(f"{k}={v}" for k, v in request.query_params.multi_items()))
            state.stats.answer(provider, f"{request.url.path}?{query}")
        return response

    return endpoint


def _bearer(request: Request) -> bool:
    return request.headers.get("authorization", "").startswith("Bearer sandbox-token-")


def _unquote_lucene(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def _quoted(query: str, name: str) -> str:
    found = re.search(rf'{name}:"((?:[^"\\]|\\.)*)"', query)
    return _unquote_lucene(found.group(1)) if found else ""


def build_app(state: SandboxState) -> Starlette:
    cat = state.catalogue

    async def token(request: Request) -> Response:
        form = (await request.body()).decode()
        if "grant_type=client_credentials" not in form or "authorization" not in request.headers:
            return _json({"error": "invalid_client"}, 401)
        return _json({"access_token": state.token(), "token_type": "Bearer", "expires_in": 3600})

    # --- spotify ------------------------------------------------------------------------------
    async def spotify_search(request: Request) -> Response:
        if not _bearer(request):
            return _json({"error": {"status": 401, "message": "No token provided"}}, 401)
        q = request.query_params.get("q", "")
        limit = int(request.query_params.get("limit", "5"))
        if limit > 10:
            return _json({"error": {"status": 400, "message": "Invalid limit"}}, 400)
        if q.startswith("isrc:"):
            found = cat.by_isrc("spotify", q[5:])
        else:
            found = cat.search("spotify", f"{_quoted(q, 'artist')} {_quoted(q, 'track')}", limit)
        items = [shapes.spotify_track(t) for t in found[:limit]]
        return _json(
            {
                "tracks": {
                    "href": "",
                    "items": items,
                    "limit": limit,
                    "next": None,
                    "offset": 0,
                    "previous": None,
                    "total": len(items),
                }
            }
        )

    async def spotify_track(request: Request) -> Response:
        if not _bearer(request):
            return _json({"error": {"status": 401, "message": "No token provided"}}, 401)
        sid = request.path_params["id"]
        if not _SPOTIFY_ID.match(sid):  # what the real API answers for a string that is no id
            return _json({"error": {"status": 400, "message": "invalid id"}}, 400)
        t = cat.by_id("spotify", sid)
        if t is None:
            return _json({"error": {"status": 404, "message": "Resource not found"}}, 404)
        return _json(shapes.spotify_track(t))

    async def spotify_features(request: Request) -> Response:
        if not state.knobs["spotify"].audio_features:
            return _json({"error": {"status": 403, "message": "Forbidden"}}, 403)
        t = cat.by_id("spotify", request.path_params["id"])
        if t is None:
            return _json({"error": {"status": 404, "message": "Resource not found"}}, 404)
        return _json(shapes.spotify_audio_features(t))

    async def spotify_artist(request: Request) -> Response:
        aid = request.path_params["id"]
        t = cat.by_spotify_artist(aid)
        if t is None:
            return _json({"error": {"status": 404, "message": "Resource not found"}}, 404)
        return _json(
            {
                "id": aid,
                "name": t.get("spotify", "artist"),
                "genres": [g.strip() for g in t.get("spotify", "genre").lower().split(";")],
            }
        )

    # --- musicbrainz --------------------------------------------------------------------------
    async def mb_isrc(request: Request) -> Response:
        found = cat.by_isrc("musicbrainz", request.path_params["isrc"])
        if not found:
            return _json({"error": "Not Found"}, 404)
        return _json(
            {
                "isrc": request.path_params["isrc"],
                "recordings": [shapes.musicbrainz_recording(t) for t in found],
            }
        )

    async def mb_search(request: Request) -> Response:
        q = request.query_params.get("query", "")
        found = cat.search("musicbrainz", f"{_quoted(q, 'artist')} {_quoted(q, 'recording')}", 10)
        recs = [shapes.musicbrainz_recording(t, score=100 - i) for i, t in enumerate(found)]
        return _json(
            {"created": "2026-01-01T00:00:00Z", "count": len(recs), "offset": 0, "recordings": recs}
        )

    async def mb_recording(request: Request) -> Response:
        t = cat.by_id("musicbrainz", request.path_params["mbid"])
        if t is None:
            return _json({"error": "Not Found"}, 404)
        return _json(shapes.musicbrainz_recording(t))

    # --- discogs ------------------------------------------------------------------------------
    def _discogs_auth(request: Request) -> bool:
        return request.headers.get("authorization", "").startswith("Discogs token=")

    async def discogs_search(request: Request) -> Response:
        if not _discogs_auth(request):
            return _json({"message": "You must authenticate to access this resource."}, 401)
        qp = request.query_params
        found = cat.search("discogs", f"{qp.get('artist', '')} {qp.get('track', '')}", 10)
        items = [shapes.discogs_search_item(t) for t in found]
        return _json({"pagination": {"page": 1, "pages": 1, "items": len(items)}, "results": items})

    async def discogs_release(request: Request) -> Response:
        if not _discogs_auth(request):
            return _json({"message": "You must authenticate to access this resource."}, 401)
        t = cat.by_id("discogs", request.path_params["id"])
        if t is None:
            return _json({"message": "Release not found."}, 404)
        return _json(shapes.discogs_release(t))

    # --- lastfm -------------------------------------------------------------------------------
    async def lastfm(request: Request) -> Response:
        qp = request.query_params
        if not qp.get("api_key"):
            return _json({"error": 10, "message": "Invalid API key"})
        found = cat.search("lastfm", f"{qp.get('artist', '')} {qp.get('track', '')}", 1)
        if not found:
            return _json({"error": 6, "message": "Track not found"})
        payload = shapes.lastfm_track(found[0])
        if qp.get("method") == "track.getTopTags":
            return _json(
                {
                    "toptags": {
                        **payload["track"]["toptags"],
                        "@attr": {"artist": qp.get("artist"), "track": qp.get("track")},
                    }
                }
            )
        if qp.get("method") != "track.getInfo":
            return _json({"error": 3, "message": "Invalid Method"})
        return _json(payload)

    # --- acousticbrainz -----------------------------------------------------------------------
    async def ab(request: Request) -> Response:
        t = cat.by_id("acousticbrainz", request.path_params["mbid"])
        if t is None:
            return _json({"message": "Not found"}, 404)
        level = request.path_params["level"]
        if level == "low-level":
            return _json(shapes.acousticbrainz_low(t))
        if level == "high-level":
            return _json(shapes.acousticbrainz_high(t))
        return _json({"message": "Not found"}, 404)

    async def ab_bulk(request: Request) -> Response:
        # GET /low-level?recording_ids=a;b:1 -> {mbid: {"0": doc}} for the ids it knows (an
        # unknown id is simply absent, as the old API did), at most 25 ids per request.
        level = request.path_params["level"]
        if level not in ("low-level", "high-level"):
            return _json({"message": "Not found"}, 404)
        ids = [i for i in request.query_params.get("recording_ids", "").split(";") if i]
        if not ids or len(ids) > AB_BULK_MAX:
            return _json({"message": f"recording_ids takes 1 to {AB_BULK_MAX} ids"}, 400)
        shape = shapes.acousticbrainz_low if level == "low-level" else shapes.acousticbrainz_high
        body: dict[str, Any] = {}
        for item in ids:
            mbid, _, offset = item.partition(":")
            t = cat.by_id("acousticbrainz", mbid)
            if t is not None and offset in ("", "0"):
                body[mbid] = {"0": shape(t)}
        return _json({**body, "mbid_mapping": {}})

    # --- deezer -------------------------------------------------------------------------------
    _deezer_404 = {"error": {"type": "DataException", "message": "no data", "code": 800}}

    async def deezer_search(request: Request) -> Response:
        q = request.query_params.get("q", "")
        found = cat.search("deezer", f"{_quoted(q, 'artist')} {_quoted(q, 'track')}", 10)
        data = [shapes.deezer_search_item(t) for t in found]
        return _json({"data": data, "total": len(data)})

    async def deezer_track(request: Request) -> Response:
        ident = request.path_params["id"]
        found = (
            cat.by_isrc("deezer", ident[5:])
            if ident.startswith("isrc:")
            else [cat.by_id("deezer", ident)]
        )
        t = found[0] if found else None
        return _json(shapes.deezer_track(t) if t else _deezer_404)

    async def deezer_album(request: Request) -> Response:
        index = int(request.path_params["id"]) - 5_000_000
        if not 0 <= index < len(cat.tracks):
            return _json(_deezer_404)
        return _json(shapes.deezer_album(cat.tracks[index]))

    # --- getsongbpm ---------------------------------------------------------------------------
    async def gsb_search(request: Request) -> Response:
        if not request.query_params.get("api_key"):
            return _json({"error": "Missing or invalid api key"}, 401)
        lookup = (
            request.query_params.get("lookup", "").replace("song:", " ").replace("artist:", " ")
        )
        found = cat.search("getsongbpm", lookup, 10)
        if not found:
            return _json({"search": {"error": "no result"}})
        return _json({"search": [shapes.getsongbpm_song(t) for t in found]})

    async def gsb_song(request: Request) -> Response:
        if not request.query_params.get("api_key"):
            return _json({"error": "Missing or invalid api key"}, 401)
        t = cat.by_id("getsongbpm", request.query_params.get("id", ""))
        return _json({"song": shapes.getsongbpm_song(t)} if t else {"song": {}})

    # --- tidal --------------------------------------------------------------------------------
    def _tidal_doc(found: list[Any], single: bool = False) -> Response:
        data, included = [], []
        for t in found:
            track, artists = shapes.tidal_track(t)
            data.append(track)
            included.extend(artists)
        body = {"data": data[0] if single else data, "included": included}
        return Response(json.dumps(body), media_type="application/vnd.api+json")

    async def tidal_tracks(request: Request) -> Response:
        if not _bearer(request):
            return _json({"errors": [{"status": "401", "code": "UNAUTHORIZED"}]}, 401)
        qp = request.query_params
        if "filter[isrc]" in qp:
            return _tidal_doc(cat.by_isrc("tidal", qp["filter[isrc]"]))
        # Repeated, as the API takes a list filter; "1,2" is one id that matches nothing.
        ids = [i for i in qp.getlist("filter[id]") if i]
        return _tidal_doc([t for t in (cat.by_id("tidal", i) for i in ids) if t])

    async def tidal_track(request: Request) -> Response:
        if not _bearer(request):
            return _json({"errors": [{"status": "401", "code": "UNAUTHORIZED"}]}, 401)
        t = cat.by_id("tidal", request.path_params["id"])
        if t is None:
            return _json({"errors": [{"status": "404", "code": "NOT_FOUND"}]}, 404)
        return _tidal_doc([t], single=True)

    async def tidal_search(request: Request) -> Response:
        if not _bearer(request):
            return _json({"errors": [{"status": "401", "code": "UNAUTHORIZED"}]}, 401)
        found = cat.search("tidal", request.path_params["query"], 10)
        refs = [{"id": t.provider_id("tidal"), "type": "tracks"} for t in found]
        tracks = [shapes.tidal_track(t)[0] for t in found]
        body = {
            "data": {
                "id": request.path_params["query"],
                "type": "searchResults",
                "relationships": {"tracks": {"data": refs}},
            },
            "included": tracks,
        }
        return Response(json.dumps(body), media_type="application/vnd.api+json")

    # --- beatport -----------------------------------------------------------------------------
    async def bp_search(request: Request) -> Response:
        if not _bearer(request):
            return _json({"detail": "Authentication credentials were not provided."}, 401)
        found = cat.search("beatport", request.query_params.get("q", ""), 10)
        return _json({"tracks": [shapes.beatport_track(t) for t in found]})

    async def bp_tracks(request: Request) -> Response:
        if not _bearer(request):
            return _json({"detail": "Authentication credentials were not provided."}, 401)
        found = cat.by_isrc("beatport", request.query_params.get("isrc", ""))
        results = [shapes.beatport_track(t) for t in found]
        return _json({"count": len(results), "next": None, "previous": None, "results": results})

    async def bp_track(request: Request) -> Response:
        if not _bearer(request):
            return _json({"detail": "Authentication credentials were not provided."}, 401)
        t = cat.by_id("beatport", request.path_params["id"])
        return _json(shapes.beatport_track(t)) if t else _json({"detail": "Not found."}, 404)

    # --- control ------------------------------------------------------------------------------
    async def stats(request: Request) -> Response:
        return _json(state.stats.snapshot())

    async def config(request: Request) -> Response:
        try:
            body = await request.json()
            for provider, raw in body.items():
                targets = PROVIDERS if provider == "*" else (provider,)
                for p in targets:
                    if p not in state.knobs:
                        raise ValueError(f"unknown provider {p}")
                    state.knobs[p] = parse_knobs(raw, state.knobs[p])
        except (ValueError, TypeError, AttributeError) as exc:
            return _json({"error": str(exc)}, 400)
        return _json({p: vars(k) for p, k in state.knobs.items()})

    g = lambda p, h, **kw: _guard(state, p, h, **kw)  # noqa: E731
    routes = [
        Route("/_sandbox/stats", stats),
        Route("/_sandbox/config", config, methods=["POST"]),
        Route("/spotify/api/token", g("spotify", token, limited=False), methods=["POST"]),
        Route("/spotify/v1/search", g("spotify", spotify_search)),
        Route("/spotify/v1/tracks/{id}", g("spotify", spotify_track)),
        Route("/spotify/v1/audio-features/{id}", g("spotify", spotify_features)),
        Route("/spotify/v1/artists/{id}", g("spotify", spotify_artist)),
        Route("/musicbrainz/ws/2/isrc/{isrc}", g("musicbrainz", mb_isrc)),
        Route("/musicbrainz/ws/2/recording", g("musicbrainz", mb_search)),
        Route("/musicbrainz/ws/2/recording/{mbid}", g("musicbrainz", mb_recording)),
        Route("/discogs/database/search", g("discogs", discogs_search)),
        Route("/discogs/releases/{id}", g("discogs", discogs_release)),
        Route("/lastfm/2.0/", g("lastfm", lastfm)),
        Route("/acousticbrainz/api/v1/{level}", g("acousticbrainz", ab_bulk)),
        Route("/acousticbrainz/api/v1/{mbid}/{level}", g("acousticbrainz", ab)),
        Route("/deezer/search/track", g("deezer", deezer_search)),
        Route("/deezer/track/{id}", g("deezer", deezer_track)),
        Route("/deezer/album/{id}", g("deezer", deezer_album)),
        Route("/getsongbpm/search/", g("getsongbpm", gsb_search)),
        Route("/getsongbpm/song/", g("getsongbpm", gsb_song)),
        Route("/tidal/v1/oauth2/token", g("tidal", token, limited=False), methods=["POST"]),
        Route("/tidal/v2/tracks", g("tidal", tidal_tracks)),
        Route("/tidal/v2/tracks/{id}", g("tidal", tidal_track)),
        Route("/tidal/v2/searchResults/{query}", g("tidal", tidal_search)),
        Route("/beatport/v4/auth/o/token/", g("beatport", token, limited=False), methods=["POST"]),
        Route("/beatport/v4/catalog/search/", g("beatport", bp_search)),
        Route("/beatport/v4/catalog/tracks/", g("beatport", bp_tracks)),
        Route("/beatport/v4/catalog/tracks/{id}/", g("beatport", bp_track)),
    ]
    return Starlette(routes=routes)
