"""keyfob: remote commands for connected vehicles, with webhook notifications of their progress."""

__version__ = "0.1.0"
