# SPDX-License-Identifier: EUPL-1.2
"""What goes into an archive of a folder (or of some of its members), and each file's bytes.

``plan`` lists the entries from one snapshot: names only (folders end with "/"), never content;
``open_file`` reads one file's current content when the archive reaches it, so that an archive
of 100,000 files holds one file's manifest at a time. A file deleted in between is left out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cartable.core import manifest, permissions, tree
from cartable.core.context import Core
from cartable.core.errors import InvalidInput, NotFound
from cartable.core.model import Principal
from cartable.core.reads import Content
from cartable.core.tree import display
from cartable.store.meta import content as content_repo
from cartable.store.meta import nodes as nodes_repo
from cartable.store.meta import search as search_repo

__all__ = ["ArchiveEntry", "plan", "open_file", "ROOT_NAME"]

ROOT_NAME = "download"  # Nextcloud's name for an archive of the whole tree


@dataclass(frozen=True, slots=True)
class ArchiveEntry:
    name: str  # path inside the archive, "/"-separated; a folder's ends with "/"
    node_id: int
    is_dir: bool
    mtime: float


def plan(core: Core, principal: Principal, parts: Sequence[str],
         members: Sequence[Sequence[str]] | None = None) -> tuple[str, list[ArchiveEntry]]:
    """(archive name without extension, entries) for the folder at parts. Without members the
    archive holds the folder itself and everything below it; with members (paths relative to
    the folder, already validated) it holds those and everything below them, named relative to
    the folder. NotFound for a missing folder or member; InvalidInput if parts is a file."""
    permissions.require(principal, permissions.READ, f"downloading {display(parts)}")
    with core.db.read() as tx:
        folder = tree.resolve_from(tx, principal.root_id, parts)
        if not folder.is_dir:
            raise InvalidInput(f"{display(parts)} is a file, not a folder")
        name = parts[-1] if parts else ROOT_NAME
        if members is None:
            tops = [(folder, name)]
        else:
            tops = []
            for member in members:
                try:
                    tops.append((tree.resolve_from(tx, folder.id, member), "/".join(member)))
                except NotFound:
                    raise NotFound(f"{display((*parts, *member))} does not exist") from None
        entries: list[ArchiveEntry] = []
        for top, top_name in tops:
            names = {top.id: top_name}
            for node in nodes_repo.subtree(tx, top.id) if top.is_dir else [top]:
                if node.id != top.id:
                    names[node.id] = names[node.parent_id] + "/" + node.name  # type: ignore[index]
                entries.append(ArchiveEntry(names[node.id] + ("/" if node.is_dir else ""), node.id,
                                            node.is_dir, node.mtime))
    return name, entries


def open_file(core: Core, principal: Principal, node_id: int) -> Content | None:
    """The current content of a file of the caller's space (node and version from one snapshot),
    or None if it is gone (deleted for good, or into the trash)."""
    with core.db.read() as tx:
        node = nodes_repo.get(tx, node_id)
        if node is None or node.is_dir or node.space_id != principal.space_id:
            return None
        if not search_repo.paths_of(tx, [node.id], principal.root_id):
            return None  # deleted meanwhile: in the trash, detached from the tree
        ver = content_repo.get_version(tx, node.version_id) if node.version_id is not None else None
    if ver is None:
        return Content(core, node, 0, [], b"")
    return Content(core, node, ver.size, manifest.unpack(ver.manifest), ver.inline_data)
