-- Keys of property names (property_names.property_id).
CREATE SEQUENCE IF NOT EXISTS property_id_seq START 1
