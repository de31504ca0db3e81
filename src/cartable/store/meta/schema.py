# SPDX-License-Identifier: EUPL-1.2
"""Tables of the metadata repository (SQLAlchemy Core), for SQLite and PostgreSQL alike.

The schema is changed only through Alembic revisions in ``migrations/versions``; this module is
the model those revisions are compared against (``alembic revision --autogenerate``).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    text,
)

__all__ = [
    "metadata", "meta_kv", "users", "app_passwords", "spaces", "nodes", "versions", "chunks",
    "changes", "dead_props", "locks", "ID", "uploads", "upload_parts", "login_flows", "favorites",
    "login_counters", "leases", "groups", "memberships", "audit_events", "trash", "shares", "share_mounts",
]

# SQLite only treats "INTEGER PRIMARY KEY" as the rowid (and AUTOINCREMENT as never reusing ids);
# PostgreSQL wants a 64-bit column. Node ids are exposed to clients and must never be reused.
ID = BigInteger().with_variant(Integer(), "sqlite")

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

meta_kv = Table(
    "meta_kv", metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

users = Table(
    "users", metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False, unique=True),
    # The name with ASCII letters lowercased (login names are ASCII): unique, so that "alice" and
    # "Alice" cannot both exist, and the column every login looks up.
    Column("name_key", String(64), nullable=False, unique=True),
    Column("display_name", String(255), nullable=False, default=""),
    Column("email", String(255), nullable=False, default=""),
    Column("password_hash", String(255), nullable=False),
    Column("is_admin", Boolean, nullable=False, default=False),
    Column("disabled", Boolean, nullable=False, default=False),
    # Bumped on every password change or disable: cached credentials carry it and are dropped.
    Column("auth_version", Integer, nullable=False, default=1),
    Column("created_at", Float, nullable=False),
    sqlite_autoincrement=True,
)

app_passwords = Table(
    "app_passwords", metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("user_id", ID, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("name", String(255), nullable=False),
    Column("token_hash", LargeBinary(32), nullable=False, unique=True),
    Column("created_at", Float, nullable=False),
    Column("last_used_at", Float, nullable=True),
    sqlite_autoincrement=True,
)

spaces = Table(
    "spaces", metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("kind", String(16), nullable=False),  # "home" (later "team")
    Column("owner_id", ID, ForeignKey("users.id", ondelete="CASCADE"), nullable=True, index=True),
    Column("root_id", ID, nullable=True),
    Column("quota", BigInteger, nullable=True),  # None: the configured default
    # Bytes held by the space's trash (the size of each trashed item when it was deleted) and by
    # the versions of its files that are not current; kept in SQL by core/trash.py and
    # core/versions.py in the transactions that change them, checked by fsck.
    Column("trash_bytes", BigInteger, nullable=False, server_default=text("0")),
    Column("versions_bytes", BigInteger, nullable=False, server_default=text("0")),
    sqlite_autoincrement=True,
)

nodes = Table(
    "nodes", metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("space_id", ID, ForeignKey("spaces.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("parent_id", ID, nullable=True),
    Column("name", String(1024), nullable=False),
    Column("kind", String(1), nullable=False),  # "f" file, "d" folder
    Column("size", BigInteger, nullable=False, default=0),  # folders: total of everything below
    Column("mtime", Float, nullable=False),
    Column("ctime", Float, nullable=False),
    Column("etag", String(64), nullable=False),
    Column("version_id", ID, nullable=True),
    Column("content_type", String(255), nullable=True),
    Column("checksums", String(1024), nullable=True),  # "SHA1:... MD5:..." as the client sent them
    UniqueConstraint("parent_id", "name"),
    # DAV SEARCH (store/meta/search.py): a user's most recent files, and files by media type,
    # come from an index range of their own space, never from a walk of the tree.
    Index("ix_nodes_space_id_mtime", "space_id", "mtime"),
    Index("ix_nodes_space_id_content_type", "space_id", "content_type"),
    sqlite_autoincrement=True,
)

versions = Table(
    "versions", metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("node_id", ID, nullable=False, index=True),
    Column("size", BigInteger, nullable=False),
    Column("created_at", Float, nullable=False),
    # Packed manifest: repeated (32-byte BLAKE3 digest, 8-byte big-endian length). Empty for inline.
    Column("manifest", LargeBinary, nullable=False),
    # Tiny content lives here instead of in the chunk store (no object, no extra fsync).
    Column("inline_data", LargeBinary, nullable=True),
    # The file's mtime while this version was its content (None: versions written before 0011).
    Column("mtime", Float, nullable=True),
    # Retention of old versions reads them by age (core/versions.py).
    Index("ix_versions_created_at", "created_at"),
    sqlite_autoincrement=True,
)

# One row per chunk a writer has claimed (core/writes.py) and, once referenced, per stored chunk.
# Life cycle: live (claimed, maybe referenced) -> dying (the GC marked it: nobody may reference it
# any more, its bytes are about to go) -> deleted. A writer's claim revives a dying row with a new
# incarnation and writes the bytes again.
chunks = Table(
    "chunks", metadata,
    Column("digest", LargeBinary(32), primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("stored_size", BigInteger, nullable=False),  # 0 until a commit says what was stored
    Column("refcount", BigInteger, nullable=False),
    # Last time a writer claimed, referenced or released the chunk; GC waits a grace period after it.
    Column("touched_at", Float, nullable=False),
    Column("dying", Boolean, nullable=False, server_default=false()),
    # Random, new each time the row becomes live (inserted or revived): a commit references the
    # chunk only if the row is still the one its writer claimed or found referenced.
    Column("incarnation", BigInteger, nullable=False, server_default=text("0")),
    Index("ix_chunks_gc", "dying", "refcount", "touched_at"),
)

changes = Table(
    "changes", metadata,
    Column("seq", ID, primary_key=True, autoincrement=True),
    Column("space_id", ID, nullable=False),
    Column("node_id", ID, nullable=False),
    Column("parent_id", ID, nullable=True),
    Column("name", String(1024), nullable=False),
    Column("kind", String(1), nullable=False),
    Column("op", String(16), nullable=False),  # create, modify, move, delete, props (see journal.py)
    Column("version_id", ID, nullable=True),
    Column("size", BigInteger, nullable=False, default=0),
    Column("mtime", Float, nullable=False, default=0),
    Column("device_id", String(128), nullable=True),
    Column("op_id", String(128), nullable=True),
    Column("at", Float, nullable=False),
    Index("ix_changes_space_seq", "space_id", "seq"),
    sqlite_autoincrement=True,
)

dead_props = Table(
    "dead_props", metadata,
    Column("node_id", ID, primary_key=True),
    Column("ns", String(1024), primary_key=True),
    Column("name", String(255), primary_key=True),
    Column("xml", Text, nullable=False),  # the whole property element, serialised
)

locks = Table(
    "locks", metadata,
    Column("token", String(128), primary_key=True),
    Column("node_id", ID, nullable=False, index=True),
    Column("user_id", ID, nullable=False),
    Column("exclusive", Boolean, nullable=False),
    Column("infinite", Boolean, nullable=False),
    Column("owner_xml", Text, nullable=False, default=""),
    Column("timeout", Integer, nullable=False),
    Column("expires_at", Float, nullable=False),
)

# Chunked uploads (Nextcloud's /remote.php/dav/uploads/USER/ID/): a staging collection per upload,
# each received part kept as a manifest (its chunks are referenced, so the GC keeps them).
uploads = Table(
    "uploads", metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("user_id", ID, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("upload_key", String(255), nullable=False),  # the client's name for the collection
    Column("created_at", Float, nullable=False),
    Column("touched_at", Float, nullable=False),
    Column("total_length", BigInteger, nullable=True),  # OC-Total-Length, when the client sent it
    Column("destination", Text, nullable=True),  # Destination on MKCOL (chunking v2), if any
    UniqueConstraint("user_id", "upload_key"),
    sqlite_autoincrement=True,
)

upload_parts = Table(
    "upload_parts", metadata,
    Column("upload_id", ID, ForeignKey("uploads.id", ondelete="CASCADE"), primary_key=True),
    Column("name", String(255), primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("manifest", LargeBinary, nullable=False),
    Column("inline_data", LargeBinary, nullable=True),
    Column("created_at", Float, nullable=False),
)

# Login Flow v2: a browser grants a device an app password, which the device polls for.
login_flows = Table(
    "login_flows", metadata,
    Column("login_token", String(128), primary_key=True),  # in the browser URL
    Column("poll_token_hash", LargeBinary(32), nullable=False, unique=True),  # the device's secret, hashed
    Column("client_name", String(255), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("user_id", ID, ForeignKey("users.id", ondelete="CASCADE"), nullable=True),
    Column("login_name", String(255), nullable=True),
    # The device's future app password, made at start: sealed with a key derived from the poll
    # token (which only the device knows), and hashed (the app_passwords row made at grant).
    # A database dump alone reveals neither; the flow is deleted once polled.
    Column("sealed_password", LargeBinary, nullable=True),
    Column("password_hash", LargeBinary(32), nullable=True),
)

# Favorites are per user (a shared node may be one user's favorite and not another's); a row goes
# with its node or its user (ON DELETE CASCADE).
favorites = Table(
    "favorites", metadata,
    Column("user_id", ID, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("node_id", ID, ForeignKey("nodes.id", ondelete="CASCADE"), primary_key=True, index=True),
    Column("created_at", Float, nullable=False),
)

# Throttling counters (failed logins per address and per address and login, login flows started
# per address): a leaky bucket per key. ``expires_at`` is when the count falls back to zero; each
# event pushes it one "cost" (seconds) further, so count = (expires_at - now) / cost. The key is a
# SHA-256 of what it counts, so attacker-chosen names are neither stored nor unbounded in length.
login_counters = Table(
    "login_counters", metadata,
    Column("key", LargeBinary(32), primary_key=True),
    Column("expires_at", Float, nullable=False, index=True),
)

# Background jobs (core/jobs.py) run once across the fleet: one row per job, held by one node at a
# time. ``holder`` is the node that holds it, or held it last; the lease is free once
# ``expires_at`` is past (the holder released it, or died and stopped renewing). ``next_run_at``
# is when the fleet should run the job again; ``cursor`` lets a long job (the orphan sweep)
# resume where the last run stopped, whichever node runs it next.
leases = Table(
    "leases", metadata,
    Column("name", String(64), primary_key=True),
    Column("holder", String(128), nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("next_run_at", Float, nullable=False),
    Column("cursor", String(256), nullable=True),
    Column("started_at", Float, nullable=True),  # start of the last run
    Column("finished_at", Float, nullable=True),  # end of the last finished run
    Column("outcome", String(1024), nullable=True),  # one line: what the last finished run did
)

# Groups of users (a school's staff, a class's teachers), the recipients of group shares.
# ``name`` is the group's id as clients send it (``shareWith``); ``name_key`` is it with ASCII
# letters lowercased, unique, so that "Profs" and "profs" cannot both exist (as users.name_key).
groups = Table(
    "groups", metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("name_key", String(64), nullable=False, unique=True),
    Column("display_name", String(255), nullable=False),
    Column("created_at", Float, nullable=False),
    sqlite_autoincrement=True,
)

# Who is in which group. The primary key serves "members of a group"; the user_id index serves
# "groups of a user", which every share lookup of a group member needs. A membership goes with its
# group or its user (ON DELETE CASCADE); adding one twice is INSERT ... ON CONFLICT DO NOTHING.
memberships = Table(
    "memberships", metadata,
    Column("group_id", ID, ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True),
    Column("user_id", ID, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True),
    Column("created_at", Float, nullable=False),
)

# Security-relevant events (core/audit.py): append-only, purged after ``audit_retention_days``.
# ``actor`` is the account name as the event saw it (a failed login keeps what was typed, cut to
# 255 characters); ``actor_key`` is it folded like users.name_key, which queries by user use. No
# foreign keys: the record outlives the accounts and objects it names.
audit_events = Table(
    "audit_events", metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("at", Float, nullable=False, index=True),
    Column("event", String(64), nullable=False),
    Column("actor", String(255), nullable=False),
    Column("actor_key", String(255), nullable=False),
    Column("address", String(64), nullable=False),
    Column("object", String(1024), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("detail", String(2048), nullable=False),
    Index("ix_audit_events_actor_key_at", "actor_key", "at"),
    Index("ix_audit_events_event_at", "event", "at"),
    sqlite_autoincrement=True,
)

# The trash: one row per deleted item (core/trash.py). The item's node and everything below it stay
# as they were, except that the node is detached from the tree (parent_id NULL): deleting a folder
# of any size writes one row here and changes one node. ``parent_id`` and ``name`` say where it
# was (a restore goes back under that folder, wherever it has moved since); ``location`` is its
# path when it was deleted, for display. ``deleted_at`` is in whole seconds and part of the
# item's name in the trash (Nextcloud's "NAME.d<TIMESTAMP>"), hence unique with the name.
trash = Table(
    "trash", metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("space_id", ID, ForeignKey("spaces.id", ondelete="CASCADE"), nullable=False),
    Column("node_id", ID, nullable=False, unique=True),
    Column("parent_id", ID, nullable=True),
    Column("name", String(1024), nullable=False),
    Column("location", Text, nullable=False),
    Column("kind", String(1), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("deleted_at", BigInteger, nullable=False),
    Column("deleted_by", ID, nullable=True),
    UniqueConstraint("space_id", "name", "deleted_at"),
    Index("ix_trash_space_id_deleted_at", "space_id", "deleted_at"),
    Index("ix_trash_deleted_at", "deleted_at"),
    sqlite_autoincrement=True,
)

# Shares of a node (core/shares.py). Today only public links (share_type 3); the columns already
# hold user (0) and group (1) shares, numbered as Nextcloud numbers them. ``space_id`` is the
# owner's space (what a link's writes are charged to) and ``owner_id`` the user who made it.
# ``token`` (links only) is unique; ``password_hash`` is argon2id. ``permissions`` is Nextcloud's
# bitmask: read 1, update 2, create 4, delete 8, share 16. A share goes with its node's space.
shares = Table(
    "shares", metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("node_id", ID, nullable=False, index=True),
    Column("space_id", ID, ForeignKey("spaces.id", ondelete="CASCADE"), nullable=False),
    Column("owner_id", ID, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("share_type", Integer, nullable=False),
    Column("share_with", String(255), nullable=True),
    Column("token", String(64), nullable=True, unique=True),
    Column("permissions", Integer, nullable=False),
    Column("password_hash", String(255), nullable=True),
    Column("expires_at", Float, nullable=True),
    Column("download_limit", Integer, nullable=True),
    Column("download_count", Integer, nullable=False, server_default=text("0")),
    Column("label", String(255), nullable=False, server_default=""),
    Column("note", Text, nullable=False, server_default=""),
    Column("hide_download", Boolean, nullable=False, server_default=false()),
    Column("created_at", Float, nullable=False),
    sqlite_autoincrement=True,
)

# Where a user or group share appears in a recipient's tree (core/usershares.py): one row per
# recipient and share, made when the share reaches them (a group member added later gets one
# then). ``parent_id`` is a folder of the recipient's own space and ``name`` the entry's name
# there: the recipient renames or moves their mount point without touching the owner's item or
# other recipients. ``left_share``: the recipient left a group share (deleted their mount point);
# the row stays so that the share does not come back. A mount goes with its share or its user.
share_mounts = Table(
    "share_mounts", metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("share_id", ID, ForeignKey("shares.id", ondelete="CASCADE"), nullable=False),
    Column("user_id", ID, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("parent_id", ID, nullable=False, index=True),
    Column("name", String(1024), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("left_share", Boolean, nullable=False, server_default=false()),
    UniqueConstraint("user_id", "share_id"),
    sqlite_autoincrement=True,
)
