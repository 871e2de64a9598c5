-- The build's rows of properties (published_properties.sql), in key order.
INSERT INTO properties (customer_key, property_key, value, update_ts) VALUES (?1, ?2, ?3, ?4)
