# SPDX-License-Identifier: EUPL-1.2
"""Rules for the tests themselves: an HTTP request made by a test has its answer checked. A setup
request whose answer is thrown away lets a test pass on a setup that silently failed (a PUT that
got 507 still 'prepares' the file the test then reads as missing)."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).parent
CLIENTS = {"client", "c", "c2", "http", "tc", "node2", "populated"}  # names tests give HTTP clients
METHODS = {"get", "put", "post", "request", "delete", "patch", "options", "head", "stream"}


def test_no_http_answer_is_thrown_away() -> None:
    thrown = []
    for path in sorted(TESTS.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Call)):
                continue
            f = node.value.func
            if (isinstance(f, ast.Attribute) and f.attr in METHODS and isinstance(f.value, ast.Name)
                    and f.value.id in CLIENTS):
                thrown.append(f"{path.relative_to(TESTS)}:{node.lineno}: {ast.unparse(node.value)[:80]}")
    assert thrown == [], "check the status of these requests:\n" + "\n".join(thrown)
