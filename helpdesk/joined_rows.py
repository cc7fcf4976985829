"""One row of a model with the rows its foreign keys name, read by SQL written once.

What `select_related()` reads, without building and compiling the same query on every request:
the SQL is made once per model, relations and database from the models' own fields, and each
row is read into the models' own instances (`Model.from_db`, the database's and the fields'
converters applied, as the ORM applies them).
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, TypeVar

from django.db import connections, router
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Model

M = TypeVar("M", bound=Model)


@dataclass(frozen=True)
class _Part:
    model: type[Model]
    relation: Any  # the foreign key or one-to-one holding it (None for the main row)
    attnames: list[str]
    pk_index: int
    converters: list[tuple[int, list[Callable[..., Any]], Any]]


@dataclass(frozen=True)
class _Read:
    sql: str
    parts: list[_Part]


# By connection: the database's converters are its own (each thread has its connections).
@lru_cache(maxsize=256)
def _read(
    model: type[Model], relations: tuple[str, ...], where: str, connection: BaseDatabaseWrapper
) -> _Read:
    quote = connection.ops.quote_name
    parts: list[tuple[str, type[Model], Any]] = [("t", model, None)]
    joins = []
    for n, name in enumerate(relations):
        field: Any = model._meta.get_field(name)
        related: type[Model] = field.related_model
        table = f"r{n}"
        if field.concrete:  # a foreign key of this model
            on = f"t.{quote(field.column)} = {table}.{quote(related._meta.pk.column)}"
        else:  # a one-to-one of the related model naming this one
            on = f"t.{quote(model._meta.pk.column)} = {table}.{quote(field.field.column)}"
        joins.append(f"LEFT OUTER JOIN {quote(related._meta.db_table)} {table} ON ({on})")
        parts.append((table, related, field))
    columns = []
    read = []
    for table, part_model, relation in parts:
        fields: list[Any] = list(part_model._meta.concrete_fields)
        converters = []
        for i, field in enumerate(fields):
            expression = field.get_col(table)
            found = connection.ops.get_db_converters(expression) + field.get_db_converters(
                connection
            )
            if found:
                converters.append((i, found, expression))
            columns.append(f"{table}.{quote(field.column)}")
        pk_index = fields.index(part_model._meta.pk)
        read.append(_Part(part_model, relation, [f.attname for f in fields], pk_index, converters))
    tables = f"{quote(model._meta.db_table)} t {' '.join(joins)}"
    # Names from the models, `where` from the caller's code: no value is written into the SQL.
    sql = f"SELECT {', '.join(columns)} FROM {tables} WHERE {where}"  # noqa: S608
    return _Read(sql, read)


def joined_row_get(
    model: type[M], relations: Sequence[str], *, where: str, params: Sequence[Any]
) -> M | None:
    """The one row of `model` that `where` (SQL on the alias `t`) finds, or None.

    Each foreign key or one-to-one of `relations` holds its row (None for none), as with
    `select_related()`.
    """
    alias = router.db_for_read(model)
    connection = connections[alias]
    read = _read(model, tuple(relations), where, connection)
    with connection.cursor() as cursor:
        cursor.execute(read.sql, list(params))
        row = cursor.fetchone()
    if row is None:
        return None
    start = 0
    main: Any = None
    for part in read.parts:
        values = list(row[start : start + len(part.attnames)])
        start += len(part.attnames)
        for i, found, expression in part.converters:
            for converter in found:
                values[i] = converter(values[i], expression, connection)
        if part.relation is None:
            main = part.model.from_db(alias, part.attnames, values)
            continue
        # Kept on the row as select_related() keeps it, None too (a one-to-one of the other
        # model then raises its DoesNotExist without a query).
        related = None
        if values[part.pk_index] is not None:  # else no row joined
            related = part.model.from_db(alias, part.attnames, values)
            if not part.relation.concrete:  # and the other row's key to this one, likewise
                part.relation.field.set_cached_value(related, main)
        part.relation.set_cached_value(main, related)
    return main
