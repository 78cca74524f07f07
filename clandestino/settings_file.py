"""Which file holds the settings: python-decouple's AutoConfig search, which the original used.

From the working directory upward, the first folder holding a `settings.ini` or a `.env` (in that
order) gives the one file used; the root folder itself is not searched, as in decouple. Only `os`
is imported, so the quick `cdt -h` can ask too.
"""

from __future__ import annotations

import os

__all__ = ["SETTINGS_FILE_NAMES", "find_settings_file"]

SETTINGS_FILE_NAMES = ("settings.ini", ".env")


def find_settings_file(start: str) -> str | None:
    """The path of the settings file decouple would read for `start`, or None."""
    folder = os.path.abspath(start)
    root = os.path.normcase(os.path.abspath(os.sep))
    while folder and os.path.normcase(folder) != root:
        for name in SETTINGS_FILE_NAMES:
            candidate = os.path.join(folder, name)
            if os.path.isfile(candidate):
                return candidate
        parent = os.path.dirname(folder)
        if parent == folder:
            break
        folder = parent
    return None
