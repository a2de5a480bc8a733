"""The SQL stores' table and the statements they run, built once for sync and async alike (no I/O of its own).

The table (`tiktok_oauth_tokens` by default), on a private `MetaData`:

| column | type | |
|---|---|---|
| `key` | text, primary key | the store key (see `stored_key` for the one exception) |
| `token` | text | the token's JSON, as `tiktok_oauth.stores._codec.encode_token` writes it |
| `expires_at` | double, null | the access token's expiry (epoch seconds); indexed with `key` |
| `refresh_expires_at` | double, null | the refresh token's expiry; indexed |
| `updated_at` | double | when the row was last written (epoch seconds) |

`keys()` and `expiring()` read in pages of `PAGE` rows, each page one indexed range query in its own short
transaction (keyset paging: the last row of a page is where the next one starts), so listing holds no
connection or lock while its caller works, and memory does not grow with the table.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from tiktok_oauth.errors import TokenStoreError

__all__ = ["PAGE", "ExpiringPager", "KeyPager", "Schema", "key_of", "stored_key"]

PAGE: Final = 1000
COLUMNS: Final = ("key", "token", "expires_at", "refresh_expires_at", "updated_at")

# PostgreSQL text cannot hold NUL. A key holding one (or starting with this marker) is stored as the marker
# plus the base64 of its UTF-8: every other key is stored exactly as given, so apps can join on it.
_ENCODED: Final = "\x1b"


def stored_key(key: str) -> str:
    """The `key` column's value for the store key `key` (itself, unless it holds NUL or starts with ESC)."""
    if "\x00" not in key and not key.startswith(_ENCODED):
        return key
    return _ENCODED + base64.urlsafe_b64encode(key.encode("utf-8", "surrogatepass")).decode("ascii")


def key_of(value: str) -> str:
    """The store key of a `key` column value: the inverse of `stored_key`."""
    if not value.startswith(_ENCODED):
        return value
    return base64.urlsafe_b64decode(value[len(_ENCODED) :]).decode("utf-8", "surrogatepass")


def expiry(token: Mapping[str, Any], name: str) -> float | None:
    """`token[name]` as a finite float, else None (the rule of `_codec.access_expiry`, for any field)."""
    value = token.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


class _Hidden(str):
    """The token's JSON as a bound parameter or a fetched value: a `str` whose `repr` hides it.

    SQLAlchemy shows bound parameters with `repr` in its SQL log (`echo`, or the `sqlalchemy.engine`
    logger at INFO) and in the text of its errors, and every fetched row with `repr` at DEBUG
    (`echo="debug"`, or that logger at DEBUG); drivers bind it as the plain text it is.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return "'<token JSON>'"


class TokenText(sa.types.TypeDecorator[str]):
    """Text that binds and is fetched as `_Hidden`, so no log line or error of SQLAlchemy's shows a token."""

    impl = sa.Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: sa.Dialect) -> str | None:  # noqa: ARG002
        return None if value is None else _Hidden(value)

    def process_result_value(self, value: str | None, dialect: sa.Dialect) -> str | None:  # noqa: ARG002
        return None if value is None else _Hidden(value)


_KEY_TYPE: Final = sa.Text().with_variant(sa.String(255), "mysql", "mariadb", "mssql", "oracle")


class Schema:
    """The table named `name` and every statement the stores run on it, for one dialect."""

    def __init__(self, name: str, dialect: str) -> None:
        self.name = name
        self.dialect = dialect
        self.metadata = sa.MetaData()
        self.table = sa.Table(
            name,
            self.metadata,
            sa.Column("key", _KEY_TYPE, primary_key=True),
            sa.Column("token", TokenText(), nullable=False),
            sa.Column("expires_at", sa.Double(), nullable=True),
            sa.Column("refresh_expires_at", sa.Double(), nullable=True),
            sa.Column("updated_at", sa.Double(), nullable=False),
        )
        columns = self.table.c
        # (expires_at, key): `expiring` pages walk it in order; a query on expires_at alone uses it too.
        self.expires_index = sa.Index(f"ix_{name}_expires_at", columns.expires_at, columns.key)
        self.refresh_index = sa.Index(f"ix_{name}_refresh_expires_at", columns.refresh_expires_at)
        self.table.append_constraint(self.expires_index)
        self.table.append_constraint(self.refresh_index)

    # -- the table ---------------------------------------------------------------------------------

    def create(self, connection: Connection) -> None:
        """Create the table and its indexes where missing (on a sync connection, in its transaction)."""
        self.metadata.create_all(connection, checkfirst=True)

    def exists(self, connection: Connection) -> bool:
        return sa.inspect(connection).has_table(self.name)

    def check(self, connection: Connection) -> None:
        """Refuse a table of that name that lacks our columns (`TokenStoreError` naming them)."""
        present = {column["name"] for column in sa.inspect(connection).get_columns(self.name)}
        missing = [name for name in COLUMNS if name not in present]
        if missing:
            raise TokenStoreError(
                f"the table {self.name!r} exists but has no column {', '.join(map(repr, missing))}: "
                "it is not a tiktok-oauth token table (choose another name with table=...)"
            )

    # -- statements --------------------------------------------------------------------------------

    def select_token(self, key: str) -> sa.Select[tuple[str]]:
        return sa.select(self.table.c.token).where(self.table.c.key == stored_key(key))

    def row(
        self, key: str, data: str, expires_at: float | None, refresh_at: float | None, now: float
    ) -> dict[str, Any]:
        return {
            "key": stored_key(key),
            "token": data,
            "expires_at": expires_at,
            "refresh_expires_at": refresh_at,
            "updated_at": now,
        }

    def upsert(self, row: dict[str, Any]) -> sa.Executable | None:
        """One `INSERT ... ON CONFLICT (key) DO UPDATE` where the dialect has it, else None."""
        insert: Any
        if self.dialect == "postgresql":
            insert = postgresql.insert(self.table)
        elif self.dialect == "sqlite":
            insert = sqlite.insert(self.table)
        else:
            return None
        statement = insert.values(row)
        upsert: sa.Executable = statement.on_conflict_do_update(
            index_elements=[self.table.c.key],
            set_={name: statement.excluded[name] for name in COLUMNS if name != "key"},
        )
        return upsert

    def update(self, row: dict[str, Any]) -> sa.Update:
        """The generic upsert's first half: update the row if it is there."""
        values = {name: value for name, value in row.items() if name != "key"}
        return sa.update(self.table).where(self.table.c.key == row["key"]).values(values)

    def insert(self, row: dict[str, Any]) -> sa.Insert:
        """The generic upsert's second half, when the update changed no row."""
        return sa.insert(self.table).values(row)

    def delete(self, key: str) -> sa.Delete:
        return sa.delete(self.table).where(self.table.c.key == stored_key(key))

    def after(self, expires_at: float, key: str, *, refresh: bool = False) -> sa.ColumnElement[bool]:
        """Rows past `(expires_at, key)` in index order: a row-value comparison where the dialect has one.
        With `refresh`, the refresh token's expiry is the column."""
        columns = self.table.c
        expiry = columns.refresh_expires_at if refresh else columns.expires_at
        if self.dialect in {"postgresql", "sqlite", "mysql", "mariadb"}:
            return sa.tuple_(expiry, columns.key) > sa.tuple_(
                sa.literal(expires_at, sa.Double()), sa.literal(key, _KEY_TYPE)
            )
        return sa.or_(expiry > expires_at, sa.and_(expiry == expires_at, columns.key > key))

    def expiring_page(
        self, before: float, after: tuple[float, str] | None, *, refresh: bool = False
    ) -> sa.Select[tuple[str, float]]:
        """One page of `expiring(before)`: `expires_at < before` (with `refresh`: `refresh_expires_at`, on
        its own index), in index order, from `after` on."""
        columns = self.table.c
        expiry = columns.refresh_expires_at if refresh else columns.expires_at
        condition = expiry.is_not(None) if before == math.inf else expiry < before
        statement = sa.select(columns.key, expiry).where(condition)
        if after is not None:
            statement = statement.where(self.after(*after, refresh=refresh))
        return statement.order_by(expiry, columns.key).limit(PAGE)

    def keys_page(self, after: str | None) -> sa.Select[tuple[str]]:
        """One page of `keys()`, in primary-key order, from `after` on."""
        key = self.table.c.key
        statement = sa.select(key)
        if after is not None:
            statement = statement.where(key > after)
        return statement.order_by(key).limit(PAGE)


class KeyPager:
    """Walks `keys()` page by page: `query()` gives the next statement (None when done), `feed` its rows."""

    def __init__(self, schema: Schema) -> None:
        self._schema = schema
        self._after: str | None = None
        self._done = False

    def query(self) -> sa.Select[tuple[str]] | None:
        return None if self._done else self._schema.keys_page(self._after)

    def feed(self, rows: Sequence[Sequence[Any]]) -> Iterable[str]:
        self._done = len(rows) < PAGE
        if rows:
            self._after = rows[-1][0]
        return [key_of(row[0]) for row in rows]


class ExpiringPager:
    """Walks `expiring(before)` page by page, as `KeyPager` walks `keys()`."""

    def __init__(self, schema: Schema, before: float, *, refresh: bool = False) -> None:
        self._schema = schema
        self._before = before
        self._refresh = refresh
        self._after: tuple[float, str] | None = None
        # NaN is before nothing, and -inf is after everything: no query at all.
        self._done = math.isnan(before) or before == -math.inf

    def query(self) -> sa.Select[tuple[str, float]] | None:
        return (
            None
            if self._done
            else self._schema.expiring_page(self._before, self._after, refresh=self._refresh)
        )

    def feed(self, rows: Sequence[Sequence[Any]]) -> Iterable[str]:
        self._done = len(rows) < PAGE
        if rows:
            key, expires_at = rows[-1][0], rows[-1][1]
            self._after = (expires_at, key)
        return [key_of(row[0]) for row in rows]
