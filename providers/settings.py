"""Per-provider settings from the environment (``SONGNODES_<PROVIDER>_*``).

Secrets are ``SecretStr`` so they never print. Default base URLs are the real services, except
AcousticBrainz: the public service was shut down in 2023, so it stays disabled (``base_url`` None)
until someone points it at a mirror or a dump server.
"""

from __future__ import annotations

from pydantic import SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = [
    "SETTINGS_CLASSES",
    "AcousticBrainzSettings",
    "BeatportSettings",
    "DeezerSettings",
    "DiscogsSettings",
    "GetSongBpmSettings",
    "LastfmSettings",
    "MusicBrainzSettings",
    "ProviderSettings",
    "SpotifySettings",
    "TidalSettings",
    "settings_for",
]


class ProviderSettings(BaseSettings):
    """Settings shared by every HTTP provider."""

    model_config = SettingsConfigDict(extra="ignore")

    base_url: str | None = None
    client_id: str | None = None
    client_secret: SecretStr | None = None
    api_key: SecretStr | None = None
    token_url: str | None = None
    timeout: float = 10.0
    rate_limit_per_second: float | None = None
    rate_limit_per_day: int | None = None
    cost_per_call_usd: float = 0.0

    @model_validator(mode="after")
    def _register_secrets(self) -> ProviderSettings:
        # Every credential this process loads is redacted from its logs and messages.
        from providers._http import register_secret

        register_secret(self.client_id)
        for secret in (self.client_secret, self.api_key):
            register_secret(secret.get_secret_value() if secret else None)
        return self


class BeatportSettings(ProviderSettings):
    model_config = SettingsConfigDict(env_prefix="SONGNODES_BEATPORT_", extra="ignore")
    base_url: str | None = "https://api.beatport.com/v4"
    token_url: str | None = "https://api.beatport.com/v4/auth/o/token/"
    # Not documented publicly; a DJ-tool author assumes 1 req/s.
    rate_limit_per_second: float | None = 1.0


class SpotifySettings(ProviderSettings):
    model_config = SettingsConfigDict(env_prefix="SONGNODES_SPOTIFY_", extra="ignore")
    base_url: str | None = "https://api.spotify.com/v1"
    token_url: str | None = "https://accounts.spotify.com/api/token"
    rate_limit_per_second: float | None = 3.0
    # After a 403 on audio-features (closed to apps created since 2024-11-27), stop asking for
    # this long: it is one paid, rate-limited request per track that can only answer 403 again.
    # 0 asks every time.
    audio_features_recheck_s: float = 3600.0


class MusicBrainzSettings(ProviderSettings):
    model_config = SettingsConfigDict(env_prefix="SONGNODES_MUSICBRAINZ_", extra="ignore")
    base_url: str | None = "https://musicbrainz.org/ws/2"
    rate_limit_per_second: float | None = 1.0


class DiscogsSettings(ProviderSettings):
    model_config = SettingsConfigDict(env_prefix="SONGNODES_DISCOGS_", extra="ignore")
    base_url: str | None = "https://api.discogs.com"
    # 60/min authenticated, as a moving average.
    rate_limit_per_second: float | None = 1.0


class LastfmSettings(ProviderSettings):
    model_config = SettingsConfigDict(env_prefix="SONGNODES_LASTFM_", extra="ignore")
    base_url: str | None = "https://ws.audioscrobbler.com/2.0/"
    rate_limit_per_second: float | None = 5.0


class AcousticBrainzSettings(ProviderSettings):
    model_config = SettingsConfigDict(env_prefix="SONGNODES_ACOUSTICBRAINZ_", extra="ignore")
    base_url: str | None = None
    rate_limit_per_second: float | None = 1.0


class DeezerSettings(ProviderSettings):
    model_config = SettingsConfigDict(env_prefix="SONGNODES_DEEZER_", extra="ignore")
    base_url: str | None = "https://api.deezer.com"
    # About 50 requests per 5 s per IP.
    rate_limit_per_second: float | None = 10.0


class GetSongBpmSettings(ProviderSettings):
    model_config = SettingsConfigDict(env_prefix="SONGNODES_GETSONGBPM_", extra="ignore")
    base_url: str | None = "https://api.getsong.co"
    # 3000/hour; going over blocks the key for an hour, so stay under it.
    rate_limit_per_second: float | None = 0.8


class TidalSettings(ProviderSettings):
    model_config = SettingsConfigDict(env_prefix="SONGNODES_TIDAL_", extra="ignore")
    base_url: str | None = "https://openapi.tidal.com/v2"
    token_url: str | None = "https://auth.tidal.com/v1/oauth2/token"
    rate_limit_per_second: float | None = 1.0


SETTINGS_CLASSES: dict[str, type[ProviderSettings]] = {
    "beatport": BeatportSettings,
    "spotify": SpotifySettings,
    "musicbrainz": MusicBrainzSettings,
    "discogs": DiscogsSettings,
    "lastfm": LastfmSettings,
    "acousticbrainz": AcousticBrainzSettings,
    "deezer": DeezerSettings,
    "getsongbpm": GetSongBpmSettings,
    "tidal": TidalSettings,
}


def settings_for(provider: str) -> ProviderSettings:
    """Load one provider's settings from the current environment."""
    cls = SETTINGS_CLASSES.get(provider, ProviderSettings)
    return cls()
