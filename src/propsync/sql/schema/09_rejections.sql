-- The quarantine: rows and cells a batch refused, with the raw value and the reason.
CREATE TABLE IF NOT EXISTS rejections (
    batch_id    VARCHAR NOT NULL,
    row_nr      BIGINT,
    scope       VARCHAR NOT NULL,
    column_name VARCHAR,
    raw_value   VARCHAR,
    reason      VARCHAR NOT NULL
)
