# SPDX-License-Identifier: EUPL-1.2
"""The longest request values the metadata schema stores, read from the schema itself.

SQLite stores a longer string silently; PostgreSQL refuses it with an error (a 500). Adapters
therefore check these values where they enter and answer 400 naming the header or property.
"""

from __future__ import annotations

from typing import Any

from cartable.store.meta.schema import changes, dead_props, nodes, upload_parts, uploads

__all__ = ["DEVICE_ID", "OP_ID", "CHECKSUMS", "CONTENT_TYPE", "PROP_NS", "PROP_NAME", "UPLOAD_KEY",
           "PART_NAME"]


def _length(column: Any) -> int:
    length = getattr(column.type, "length", None)
    assert isinstance(length, int), f"{column} has no declared length"
    return length


DEVICE_ID = _length(changes.c.device_id)  # X-Cartable-Device
OP_ID = _length(changes.c.op_id)  # X-Cartable-Operation
CHECKSUMS = _length(nodes.c.checksums)  # OC-Checksum
CONTENT_TYPE = _length(nodes.c.content_type)  # Content-Type (its media type)
PROP_NS = _length(dead_props.c.ns)  # a dead property's namespace
PROP_NAME = _length(dead_props.c.name)  # a dead property's local name
UPLOAD_KEY = _length(uploads.c.upload_key)  # a chunked upload's id
PART_NAME = _length(upload_parts.c.name)  # a chunked upload's part name
