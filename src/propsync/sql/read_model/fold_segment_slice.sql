-- One segment's rows of a fold slice (store/read_model.py _fold_slice): the rows of segment :seg
-- whose customer is in [:lo, :hi) replace properties' rows (recent rows are newer: no
-- comparison). The fold takes the segments oldest first, so of a key in several segments the
-- newest row is written last, as reads take max(seg). Read in the primary key's order, so no
-- sort: picking each key's newest row with a GROUP BY over all the segments sorted every row
-- twice (at 1M x 10, 11.4 s of CPU to fold 1.6M rows against 7.9 s this way).
-- :hi may be a BLOB, above every TEXT in SQLite's order: the last slice has no upper bound.
INSERT INTO properties (customer_id, property, value, update_ts)
SELECT customer_id, property, value, update_ts
FROM recent_properties
WHERE seg = :seg AND customer_id >= :lo AND customer_id < :hi
ORDER BY customer_id, property
ON CONFLICT (customer_id, property) DO UPDATE SET
    value = excluded.value,
    update_ts = excluded.update_ts
