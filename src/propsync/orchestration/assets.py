"""The Airflow Asset that every publish emits: downstream DAGs schedule on it.

    from propsync.orchestration.assets import PUBLISHED_WAREHOUSE

    @dag(schedule=[PUBLISHED_WAREHOUSE])
    def refresh_reports(): ...

Each event's ``extra`` carries ``version`` (the published version number), ``path`` (the
published file readers open) and, for imports, ``batch_id``. The URI is a fixed logical name so
the asset keeps its identity whichever path the warehouse lives at.
"""

from __future__ import annotations

from airflow.sdk import Asset

PUBLISHED_WAREHOUSE = Asset(
    name="propsync_published_warehouse",
    uri="propsync://warehouse/published",
    group="propsync",
)
