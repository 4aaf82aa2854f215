"""Small helpers with no domain words: ids, the clock, paging, HAL links, address classes,
the log format (``logs``), the event loop (``loops``), the settled heap (``heap``).

Imports nothing of keyfob, not even its siblings in the bottom layer (``config``, ``errors``,
``vocabulary``), so that every package may use it.
"""
