# SPDX-License-Identifier: EUPL-1.2
"""Records are built from rows by position: their fields must follow the tables' column order."""

from __future__ import annotations

import dataclasses

from cartable.store.meta.records import NodeRecord
from cartable.store.meta.schema import nodes


def test_node_record_fields_follow_the_table_columns() -> None:
    assert [f.name for f in dataclasses.fields(NodeRecord)] == [c.name for c in nodes.columns]
