"""``keyfob listen``: a webhook receiver for developers to watch notifications arrive."""
