"""Vehicles: the registry, what each one can do, and its last known status."""
