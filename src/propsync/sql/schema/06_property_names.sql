-- The property dictionary: every property name in use and its key.
CREATE TABLE IF NOT EXISTS property_names (
    property_id INTEGER NOT NULL,
    property    VARCHAR NOT NULL
)
