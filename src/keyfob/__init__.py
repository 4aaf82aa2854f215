"""keyfob: remote commands for connected vehicles, with webhook notifications of their progress."""

__version__ = "0.1.0"
"""Written here only: the package metadata (pyproject's dynamic version), ``keyfob --version``,
the OpenAPI document and the webhooks' ``User-Agent`` all read it."""
