# SPDX-License-Identifier: EUPL-1.2
"""Ported from nextcloud/server build/integration/features/ocs-v1.feature (OCS content types)."""

from __future__ import annotations

import pytest

from tests.nextcloud.scenarios.conftest import Nc


@pytest.mark.parametrize("query, content_type", [
    ("", "text/xml; charset=UTF-8"),                       # Default output is xml
    ("?format=xml", "text/xml; charset=UTF-8"),            # Get XML when requesting XML
    ("?format=json", "application/json; charset=utf-8"),   # Get JSON when requesting JSON
], ids=["default output is xml", "get xml when requesting xml", "get json when requesting json"])
def test_ocs_content_types(nc: Nc, query: str, content_type: str) -> None:
    """Default output is xml / Get XML when requesting XML / Get JSON when requesting JSON"""
    r = nc.client.get(f"/ocs/v1.php/cloud/config{query}", headers={"OCS-APIRequest": "true"})
    assert r.status_code == 200
    assert r.headers["content-type"] == content_type
