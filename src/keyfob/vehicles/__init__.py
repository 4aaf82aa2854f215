"""Vehicles: the registry, what each one can do, and its last known status.

Fleets and vehicles, looked up with the tenant always in the query (``service``); onboard
capabilities; presence and the latest status a vehicle reported (``state``), and the
contract's ``Status`` documents built from it; plausible VINs for simulated vehicles.

May import ``keyfob.store`` and the bottom layer (``kit``, ``config``, ``errors``,
``vocabulary``). Never another domain: ``auth``, ``callbacks`` and ``notifications`` are
independent of it.
"""
