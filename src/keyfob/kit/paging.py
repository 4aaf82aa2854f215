"""Collection paging as the contract has it: ``indexRange``, ``pageSize`` and ``pageToken``.

``indexRange`` (``a-b`` or ``a-``) picks a window of the whole, ordered collection; ``pageSize``
(1..60) cuts that window into pages; ``pageToken`` is an opaque cursor naming a page of *that*
query, so the server stays stateless. ``total`` counts the items in the window.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import re
from dataclasses import dataclass

from keyfob.kit.text import shown

INDEX_RANGE = re.compile(r"^(\d+)-(\d*)$")
MAX_PAGE_SIZE = 60
# Far beyond any collection, and small enough that every offset fits a 64-bit SQL integer.
MAX_INDEX = 999_999_999


class PagingError(ValueError):
    """The paging parameters are invalid; the message says which and why."""


@dataclass(frozen=True)
class PageRequest:
    start: int
    end: int | None  # inclusive index, None = to the end
    page_size: int
    page: int  # 1-based
    index_range: str

    @property
    def offset(self) -> int:
        return self.start + (self.page - 1) * self.page_size

    def limit(self) -> int:
        if self.end is None:
            return self.page_size
        return max(0, min(self.page_size, self.end - self.offset + 1))

    def window_total(self, collection_size: int) -> int:
        last = collection_size - 1 if self.end is None else min(self.end, collection_size - 1)
        return max(0, last - self.start + 1)

    def token_for(self, page: int, scope: str) -> str:
        raw = json.dumps(
            {"p": page, "r": self.index_range, "s": self.page_size, "q": _digest(scope)}
        )
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _digest(scope: str) -> str:
    return hashlib.sha256(scope.encode()).hexdigest()[:12]


def parse_page_request(
    index_range: str | None, page_size: int | None, page_token: str | None, *, scope: str
) -> PageRequest:
    """``scope`` names the collection and its filters; a token from another query is refused."""
    range_text = index_range if index_range is not None else "0-"
    match = INDEX_RANGE.fullmatch(range_text)
    if not match:
        raise PagingError(f"indexRange must look like '0-9' or '5-' (got {shown(range_text)})")
    if max(len(match.group(1)), len(match.group(2))) > len(str(MAX_INDEX)):
        raise PagingError(
            f"indexRange bounds must be at most {MAX_INDEX} (got {shown(range_text)})"
        )
    start = int(match.group(1))
    end = int(match.group(2)) if match.group(2) else None
    if end is not None and end < start:
        raise PagingError(f"indexRange end {end} is before its start {start}")
    size = MAX_PAGE_SIZE if page_size is None else page_size
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise PagingError(f"pageSize must be between 1 and {MAX_PAGE_SIZE} (got {size})")
    page = 1
    if page_token is not None:
        page = _read_token(page_token, range_text, size, scope)
    return PageRequest(start, end, size, page, range_text)


def _read_token(token: str, range_text: str, size: int, scope: str) -> int:
    try:
        padded = token + "=" * (-len(token) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        page = int(data["p"])
        same_query = (data["r"], data["s"], data["q"]) == (range_text, size, _digest(scope))
    except (ValueError, KeyError, TypeError, OverflowError, binascii.Error):
        raise PagingError("pageToken is not one this server issued") from None
    if not 1 <= page <= MAX_INDEX:
        raise PagingError("pageToken is not one this server issued")
    if not same_query:
        raise PagingError(
            "pageToken belongs to another query (indexRange, pageSize or filters differ)"
        )
    return page


@dataclass(frozen=True)
class PageInfo:
    total: int
    total_pages: int
    current: int


def page_info(request: PageRequest, collection_size: int) -> PageInfo:
    total = request.window_total(collection_size)
    pages = max(1, math.ceil(total / request.page_size))
    return PageInfo(total=total, total_pages=pages, current=request.page)
