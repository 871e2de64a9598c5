-- The segments' state (GET /healthz): how many are live, their rows, and a fold's progress.
SELECT
    (SELECT count(*) FROM recent_segments) AS segments,
    (SELECT coalesce(sum(rows), 0) FROM recent_segments) AS recent_rows,
    (SELECT value FROM meta WHERE key = 'fold_through') AS fold_through,
    (SELECT value FROM meta WHERE key = 'fold_next') AS fold_next,
    (SELECT value FROM meta WHERE key = 'fold_slices') AS fold_slices
