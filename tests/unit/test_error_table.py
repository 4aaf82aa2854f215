"""``docs/errors.md`` and ``keyfob.errors.ErrorCode`` describe the same codes, in step."""

from __future__ import annotations

import re
from pathlib import Path
from typing import NamedTuple

import pytest

from keyfob.errors import ErrorCode

TABLE = Path(__file__).parents[2] / "docs" / "errors.md"
ROW = re.compile(r"^\| (\d+) \| (\d+) \| `(\w+)` \| (.+?) \| (.*) \|$")


class Row(NamedTuple):
    code: int
    status: int
    name: str
    meaning: str
    when: str


def rows() -> list[Row]:
    found = []
    for line in TABLE.read_text(encoding="utf-8").splitlines():
        match = ROW.match(line)
        if match:
            code, status, name, meaning, when = match.groups()
            found.append(Row(int(code), int(status), name, meaning.strip(), when.strip()))
    return found


def test_the_table_lists_every_code_once_and_nothing_else() -> None:
    documented = [row.name for row in rows()]
    assert len(documented) == len(set(documented)), "a code is documented twice"
    assert set(documented) == {error.name for error in ErrorCode}, (
        f"only in docs: {set(documented) - {e.name for e in ErrorCode}}; "
        f"only in the enum: {({e.name for e in ErrorCode}) - set(documented)}"
    )


@pytest.mark.parametrize("error", list(ErrorCode), ids=lambda e: e.name)
def test_each_row_matches_the_enum(error: ErrorCode) -> None:
    (row,) = [row for row in rows() if row.name == error.name]
    assert (row.code, row.status) == (error.code, error.status)
    assert row.meaning == error.meaning
    assert row.when, f"{error.name}: say when keyfob answers it"


def test_codes_are_status_times_100_plus_two_digits_and_unique() -> None:
    codes = [error.code for error in ErrorCode]
    assert len(codes) == len(set(codes))
    for error in ErrorCode:
        assert 100 <= error.status <= 599
        assert error.code // 100 == error.status
        assert 0 <= error.code % 100 <= 99


def test_the_table_is_in_code_order() -> None:
    codes = [row.code for row in rows()]
    assert codes == sorted(codes)
