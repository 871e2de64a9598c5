-- Every batch's record goes into the next history file (a base carries the whole history).
INSERT INTO history_pending
SELECT batch_id FROM batches
UNION
SELECT batch_id FROM quality_results
