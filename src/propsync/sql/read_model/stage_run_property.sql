INSERT INTO run_properties (customer_id, property, value, update_ts) VALUES (?1, ?2, ?3, ?4)
