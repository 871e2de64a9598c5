-- A run's property row into the follow's new segment (in key order: an append).
INSERT INTO recent_properties (seg, customer_id, property, value, update_ts)
VALUES (?1, ?2, ?3, ?4, ?5)
