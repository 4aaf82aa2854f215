"""Small helpers with no domain words: ids, time, paging and HAL links."""
