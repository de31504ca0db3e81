# SPDX-License-Identifier: EUPL-1.2
"""The naming policy as Nextcloud (30 and later) advertises it in its files capabilities: the
desktop and mobile clients read these lists and do not try to upload a name the server refuses."""

from __future__ import annotations

from typing import Any

from cartable.common.paths import NamePolicy

__all__ = ["filename_capabilities"]


def filename_capabilities(policy: NamePolicy) -> dict[str, Any]:
    """The files.* keys, lower-cased as Nextcloud sends them ("blacklisted_files" is the name
    clients older than Nextcloud 30 read)."""
    names = sorted(n.lower() for n in policy.forbidden_names)
    return {
        "blacklisted_files": names,
        "forbidden_filenames": names,
        "forbidden_filename_basenames": sorted(b.lower() for b in policy.forbidden_basenames),
        "forbidden_filename_characters": list(policy.characters),
        "forbidden_filename_extensions": [e.lower() for e in policy.forbidden_extensions],
    }
