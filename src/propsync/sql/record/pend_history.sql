-- The batch's record changed: the next run's history file carries it again (store/runs.py).
INSERT INTO history_pending BY NAME
SELECT $batch_id AS batch_id
