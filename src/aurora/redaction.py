"""Keep secrets out of text Aurora writes or shows.

`secret_values(config)` collects every secret the process knows (the config's `SecretStr`
fields and the environment variables that carry credentials); `redact(text, secrets)`
replaces each occurrence with `***`. `redact_url` removes user info, query and fragment from
a URL and, unless `keep_path`, its path too (webhook URLs embed tokens in their path).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit, urlunsplit

from pydantic import SecretStr

from aurora.config import SECRET_FIELDS, AuroraConfig

MASK = "***"
SECRET_ENV_NAMES = ("APCA_API_KEY_ID", "APCA_API_SECRET_KEY", "AURORA_WEBHOOK_URL",
                    "AURORA_BACKUP_KEY", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
_MIN_SECRET = 4  # shorter values would mask ordinary words; such secrets are refused upstream


def secret_values(
    config: AuroraConfig | None = None, env: Mapping[str, str] | None = None
) -> tuple[str, ...]:
    """Every secret value in `config` and the credential environment variables.

    Longest first, so a secret that contains another is masked whole.
    """
    env = os.environ if env is None else env
    found: set[str] = set()
    if config is not None:
        for section, name in SECRET_FIELDS:
            value = getattr(getattr(config, section), name, None)
            if isinstance(value, SecretStr):
                found.add(value.get_secret_value())
    for name in SECRET_ENV_NAMES:
        if env.get(name):
            found.add(env[name])
    return tuple(sorted((s for s in found if len(s) >= _MIN_SECRET), key=len, reverse=True))


def redact(text: str, secrets: Iterable[str]) -> str:
    """`text` with every secret value replaced by `***`."""
    for secret in secrets:
        if secret and secret in text:
            text = text.replace(secret, MASK)
    return text


def redact_url(url: str, keep_path: bool = False) -> str:
    """A URL safe to show: no user info, query or fragment; path masked unless `keep_path`.

    Anything that does not parse as `scheme://host...` is returned masked whole unless it
    looks like a plain local path (no scheme).
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return MASK
    if not parts.scheme or len(parts.scheme) == 1:  # a local path (or a Windows drive)
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    path = parts.path if keep_path else (f"/{MASK}" if parts.path not in ("", "/") else "")
    return urlunsplit((parts.scheme, host, path, "", ""))
