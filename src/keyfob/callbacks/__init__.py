"""Callbacks: where and how a fleet's remote notifications are delivered."""
