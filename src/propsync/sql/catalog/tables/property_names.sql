-- The property names in use: the columns of customers_wide.
CREATE TABLE internal.property_names (
    property VARCHAR NOT NULL
)
