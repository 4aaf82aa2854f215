"""Query parameters of every collection, turned into a checked ``PageRequest``."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

from keyfob.errors import ErrorCode, KeyfobError
from keyfob.kit.paging import MAX_PAGE_SIZE, PageRequest, PagingError, parse_page_request

IndexRange = Annotated[
    str | None, Query(alias="indexRange", description="Window of the collection, e.g. 0-9 or 5-.")
]
PageSize = Annotated[int | None, Query(alias="pageSize", ge=1, le=MAX_PAGE_SIZE)]
PageToken = Annotated[str | None, Query(alias="pageToken", description="Opaque page cursor.")]


def page_request(
    index_range: str | None, page_size: int | None, page_token: str | None, *, scope: str
) -> PageRequest:
    try:
        return parse_page_request(index_range, page_size, page_token, scope=scope)
    except PagingError as exc:
        code = ErrorCode.INVALID_PAGE_TOKEN if "pageToken" in str(exc) else ErrorCode.INVALID_QUERY
        raise KeyfobError(code, str(exc)) from None
