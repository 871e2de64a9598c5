-- The model's own integer key of each property name (a handful per warehouse).
CREATE TABLE IF NOT EXISTS property_names (
    property_key INTEGER PRIMARY KEY,
    property     TEXT NOT NULL UNIQUE
)
