"""propsync: customer-properties synchronisation with per-property newer-wins updates.

Every customer property carries the time of its last update; an incoming value replaces the
stored one only when it is newer, whichever path it arrives by (snapshot import, tracking API,
UI edit). See ``docs/architecture.md`` for where data flows.
"""

__version__ = "0.1.0"
