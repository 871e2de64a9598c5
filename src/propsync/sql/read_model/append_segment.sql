-- A follow's property row in segment ?1 of recent_properties; the rows come in key order: an
-- append.
INSERT INTO recent_properties (seg, customer_key, property_key, value, update_ts)
VALUES (?1, ?2, ?3, ?4, ?5)
