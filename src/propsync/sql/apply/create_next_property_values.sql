-- The table keep_unbeaten_properties.sql fills, renamed to property_values once the old one is
-- dropped: the columns of schema/07_property_values.sql (a test holds them equal).
CREATE TABLE property_values_next (
    customer_key BIGINT  NOT NULL,
    property_id  INTEGER NOT NULL,
    value        VARCHAR NOT NULL,
    update_ts    BIGINT,
    batch_id     VARCHAR
)
