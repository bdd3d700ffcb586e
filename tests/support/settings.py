"""The suite's settings with some variables changed: a server pointed at a dead Redis, a hung
database, or a new encryption key, beside the suite's own."""

import os

from kalimera.settings import Settings, load_settings


def settings_with(settings_env: dict[str, str], **env: str) -> Settings:
    """Settings loaded as the app loads them, from ``settings_env`` and ``env`` over it; the
    process environment is left as it was."""
    old = dict(os.environ)
    os.environ.update({**settings_env, **env})
    try:
        return load_settings()
    finally:
        os.environ.clear()
        os.environ.update(old)
