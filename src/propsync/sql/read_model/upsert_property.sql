-- A run's property row: the winner, already decided by the writer (no comparison here).
INSERT INTO properties (customer_id, property, value, update_ts)
VALUES (?1, ?2, ?3, ?4)
ON CONFLICT (customer_id, property) DO UPDATE SET
    value = excluded.value,
    update_ts = excluded.update_ts
