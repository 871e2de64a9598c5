-- The build's rows of property_names (published_property_names.sql).
INSERT INTO property_names (property_key, property) VALUES (?1, ?2)
