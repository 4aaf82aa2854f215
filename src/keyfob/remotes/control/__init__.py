"""Command control beyond the contract (docs/extensions.md): dry runs of POST remote.

Kept apart from the accept and dispatch paths it reuses, so those stay as lean as they are.
"""
