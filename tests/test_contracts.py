# SPDX-License-Identifier: EUPL-1.2
"""Rules that keep the code base honest: import layers, error mapping, documented settings."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import cartable
from cartable.config import SETTINGS
from cartable.core import errors
from cartable.dav.errors import STATUS

SRC = Path(cartable.__file__).parent
ROOT = SRC.parent.parent

# package → packages it must never import (DESIGN.md and STYLE.md layer table)
FORBIDDEN = {
    "common": ["cartable."],
    "store": ["cartable.core", "cartable.dav", "cartable.http", "cartable.config", "cartable.server",
              "cartable.cli"],
    "core": ["cartable.dav", "cartable.http", "cartable.config", "cartable.server", "cartable.cli",
             "starlette", "lxml", "xml", "json", "sqlalchemy"],
    "http": ["cartable.dav", "cartable.store", "cartable.config", "cartable.server", "cartable.cli"],
    "dav": ["cartable.store", "cartable.config", "cartable.server", "cartable.cli", "sqlalchemy"],
    "api": ["cartable.store", "cartable.config", "cartable.server", "cartable.cli", "cartable.dav",
            "cartable.nextcloud", "sqlalchemy"],
    "web": ["cartable.store", "cartable.config", "cartable.server", "cartable.cli", "cartable.dav",
            "cartable.nextcloud", "sqlalchemy"],
}
ALLOWED_INSIDE = {"common": ["cartable.common"], "store": ["cartable.store", "cartable.common"]}


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    out: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.extend(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append(node.module)
    return out


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_layers(package: str) -> None:
    bad = []
    for path in (SRC / package).rglob("*.py"):
        if "migrations" in path.parts:
            continue
        for mod in _imports(path):
            if any(mod.startswith(a) for a in ALLOWED_INSIDE.get(package, [])):
                continue
            for prefix in FORBIDDEN[package]:
                if mod == prefix.rstrip(".") or mod.startswith(prefix if prefix.endswith(".") else prefix + ".") \
                        or mod == prefix:
                    bad.append(f"{path.relative_to(SRC)} imports {mod}")
    assert not bad, "\n".join(bad)


def test_store_meta_and_blobs_do_not_import_each_other() -> None:
    for a, b in (("meta", "blobs"), ("blobs", "meta")):
        for path in (SRC / "store" / a).rglob("*.py"):
            assert not any(m.startswith(f"cartable.store.{b}") for m in _imports(path)), path


def test_every_core_error_is_mapped_explicitly_by_the_dav_adapter() -> None:
    classes = [c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, errors.CartableError)]
    assert len(classes) > 10
    missing = [c.__name__ for c in classes if c not in STATUS]
    assert not missing, f"dav/errors.py STATUS lacks {missing}"


def test_every_setting_is_documented() -> None:
    doc = (ROOT / "docs" / "configuration.md").read_text()
    for s in SETTINGS:
        assert f"`{s.name}`" in doc and s.env in doc, s.name


def test_every_module_has_a_licence_line() -> None:
    for path in SRC.rglob("*.py"):
        if path.stat().st_size:
            assert path.read_text().startswith("# SPDX-License-Identifier: EUPL-1.2"), path


def _caught(handler: ast.ExceptHandler) -> list[str]:
    kinds = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    return [k.id if isinstance(k, ast.Name) else k.attr if isinstance(k, ast.Attribute) else "" for k in kinds if k]


def test_core_catches_no_os_or_driver_error() -> None:
    """The stores raise typed errors (store/blobs/base.py, store/meta/errors.py); the core catches
    those, never OSError (a store's files are its own business) nor a database driver's error."""
    bad = []
    for path in (SRC / "core").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ExceptHandler) and node.type is not None:
                if {"OSError", "IOError", "EnvironmentError", "DBAPIError", "IntegrityError"} & set(_caught(node)):
                    bad.append(f"{path.relative_to(SRC)}:{node.lineno}")
    assert bad == []
