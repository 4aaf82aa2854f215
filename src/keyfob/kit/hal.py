"""HAL ``_links`` and collection envelopes (``CollectionResult``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlencode

from keyfob.kit.paging import PageInfo, PageRequest


def link(href: str, **extra: Any) -> dict[str, Any]:
    return {"href": href, **extra}


def with_query(href: str, params: Mapping[str, str | Sequence[str] | None]) -> str:
    pairs: list[tuple[str, str]] = []
    for key, value in params.items():
        if value is None:
            continue
        if isinstance(value, str):
            pairs.append((key, value))
        else:
            pairs.extend((key, item) for item in value)
    return f"{href}?{urlencode(pairs)}" if pairs else href


def collection(
    *,
    href: str,
    query: Mapping[str, str | Sequence[str] | None],
    request: PageRequest,
    info: PageInfo,
    scope: str,
    key: str,
    items: list[dict[str, Any]],
) -> dict[str, Any]:
    """A ``CollectionResult`` whose page links carry ``pageToken`` cursors."""

    def page_href(page: int) -> str:
        params = dict(query)
        params["pageSize"] = str(request.page_size)
        if request.index_range != "0-":
            params["indexRange"] = request.index_range
        if page > 1:
            params["pageToken"] = request.token_for(page, scope)
        return with_query(href, params)

    links: dict[str, Any] = {
        "self": link(page_href(info.current)),
        "first": link(page_href(1)),
        "last": link(page_href(info.total_pages)),
    }
    if info.current < info.total_pages:
        links["next"] = link(page_href(info.current + 1))
    if 1 < info.current <= info.total_pages:
        links["prev"] = link(page_href(info.current - 1))
    return {
        "_links": links,
        "total": info.total,
        "totalPage": info.total_pages,
        "currentPage": info.current,
        "_embedded": {key: items},
    }
