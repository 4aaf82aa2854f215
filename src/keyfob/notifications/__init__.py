"""Webhook delivery: what is sent, how it is signed, when it is retried, and the POST itself."""
