-- Batches whose record (batches, rejections, quality_results rows) changed since the last run
-- file: the next run's history file carries their whole records (store/runs.py).
CREATE TABLE IF NOT EXISTS history_pending (
    batch_id VARCHAR NOT NULL
)
