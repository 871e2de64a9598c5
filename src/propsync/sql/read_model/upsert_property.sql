-- A follow's property row straight into properties: the winner, already decided by the writer (no
-- comparison here); the rows come in key order.
INSERT INTO properties (customer_key, property_key, value, update_ts)
VALUES (?1, ?2, ?3, ?4)
ON CONFLICT (customer_key, property_key) DO UPDATE SET
    value = excluded.value,
    update_ts = excluded.update_ts
