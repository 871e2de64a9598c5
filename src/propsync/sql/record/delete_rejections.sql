-- A batch's previous quarantine, replaced by insert_rejections.sql.
DELETE FROM rejections
WHERE batch_id = $batch_id
