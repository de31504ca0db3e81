# SPDX-License-Identifier: EUPL-1.2
"""Records are built from rows by position: their fields must follow the tables' column order."""

from __future__ import annotations

import dataclasses

import pytest

from cartable.store.meta.records import AuditRecord, GroupRecord, NodeRecord, ShareRecord
from cartable.store.meta.schema import audit_events, groups, nodes, shares


@pytest.mark.parametrize(("record", "table"), [(NodeRecord, nodes), (GroupRecord, groups),
                                               (AuditRecord, audit_events), (ShareRecord, shares)])
def test_record_fields_follow_the_table_columns(record: type, table: object) -> None:
    assert [f.name for f in dataclasses.fields(record)] == [c.name for c in table.columns]  # type: ignore[attr-defined]
