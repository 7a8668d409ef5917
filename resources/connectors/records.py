"""Records from an API, checked one by one and turned into the landing contract's typed frame.

Each record must be a JSON object with every mapped field present (null is a value); the source
key and the incremental field must be non-null. A field that holds an object or a list, a
field whose JSON type differs between records (or from the previous sync), or a value that does
not parse as the column's type is an error naming the page, the record and the field.
"""

import polars as pl

from cs_assets.sources.contract import SourceSpec
from cs_assets.sources.normalise import SourceDataError, normalise_text_source

MISSING = object()


def get_path(document: object, path: str) -> object:
    """The value at a dotted path of nested objects, or MISSING."""
    if path == "":
        return document
    value = document
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return MISSING
        value = value[part]
    return value


def json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "list"
    return type(value).__name__


class RecordBatch:
    """The records of one sync, mapped to contract columns as text, page by page."""

    def __init__(self, spec: SourceSpec, fields: dict[str, str], where: str, required: set[str], fail):
        self.spec = spec
        self.fields = fields
        self.where = where
        self.required = required
        self.fail = fail  # message -> exception (redacting, naming the source)
        self.values: dict[str, list[str | None]] = {c: [] for c in spec.columns}
        self.present = dict.fromkeys(spec.columns, 0)
        self.types: dict[str, tuple[str, int, int]] = {}  # column -> (JSON type, page, record) first seen
        self.pages: list[tuple[int, int, int]] = []  # (page number, first row, row count)

    def __len__(self) -> int:
        return len(self.values[next(iter(self.values))])

    def add_page(self, number: int, records: list) -> list[tuple]:
        """Map one page's records; return their source keys (for repeat detection)."""
        first = len(self)
        keys = []
        for index, record in enumerate(records, start=1):
            at = f"{self.where} page {number} record {index}"
            if not isinstance(record, dict):
                raise self.fail(f"{at}: expected a JSON object, got {json_type(record)}")
            for column, dtype in self.spec.columns.items():
                path = self.fields[column]
                value = get_path(record, path)
                if value is MISSING:
                    if column in self.required:
                        raise self.fail(f"{at}: required field {path!r} (column {column}) is missing")
                    self.values[column].append(None)
                    continue
                self.present[column] += 1
                kind = json_type(value)
                if kind in ("object", "list"):
                    raise self.fail(
                        f"{at}: field {path!r} (column {column}) is {'an' if kind == 'object' else 'a'} {kind}, expected a value of type {dtype}"
                    )
                if kind == "null":
                    if column in self.required:
                        raise self.fail(f"{at}: required field {path!r} (column {column}) is null")
                    self.values[column].append(None)
                    continue
                seen = self.types.setdefault(column, (kind, number, index))
                if seen[0] != kind:
                    raise self.fail(
                        f"{at}: field {path!r} (column {column}) changed type: it is a {kind} here "
                        f"but a {seen[0]} on page {seen[1]} record {seen[2]}"
                    )
                if kind == "boolean" and dtype != pl.String:
                    raise self.fail(
                        f"{at}: field {path!r} (column {column}) is a boolean, expected a value of type {dtype}"
                    )
                text = ("true" if value else "false") if kind == "boolean" else str(value)
                self.values[column].append(text)
            keys.append(tuple((self.values[k][-1] or "").strip() for k in self.spec.key))
        self.pages.append((number, first, len(records)))
        return keys

    def check_fields_seen(self) -> None:
        if len(self) == 0:
            return
        absent = [c for c, n in self.present.items() if n == 0]
        if absent:
            names = ", ".join(f"{self.fields[c]!r} (column {c})" for c in absent)
            raise self.fail(
                f"{self.where}: field(s) {names} in none of the {len(self)} records: renamed or removed by the API? "
                "(map them in `fields`)"
            )

    def check_types_against(self, previous: dict[str, str]) -> None:
        """The JSON type of each field must be the one the previous sync saw."""
        for column, (kind, page, index) in self.types.items():
            before = previous.get(column)
            if before and before != kind:
                raise self.fail(
                    f"{self.where} page {page} record {index}: field {self.fields[column]!r} (column {column}) "
                    f"changed type since the last sync: it was a {before}, now a {kind}"
                )

    def observed_types(self, previous: dict[str, str]) -> dict[str, str]:
        return {**previous, **{c: kind for c, (kind, _, _) in self.types.items()}}

    def to_frame(self) -> pl.DataFrame:
        """The typed frame; a value that does not parse is reported with its page and record."""
        text = pl.DataFrame({c: pl.Series(c, v, dtype=pl.String) for c, v in self.values.items()})
        try:
            return normalise_text_source(self.spec, text.lazy(), self.where).collect()
        except SourceDataError:
            for number, first, count in self.pages:
                page = text.slice(first, count).lazy()
                try:
                    normalise_text_source(self.spec, page, f"{self.where} page {number}").collect()
                except SourceDataError as exc:
                    # "source x (GET /p page 3): column 'c' row 7: ..." -> "GET /p page 3: column 'c' record 7: ..."
                    message = str(exc).removeprefix(f"source {self.spec.name} (").replace("): ", ": ", 1)
                    raise self.fail(message.replace(" row ", " record ", 1)) from None
            raise
