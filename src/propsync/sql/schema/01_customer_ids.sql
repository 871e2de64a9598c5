-- Every known customer id and the internal customer that owns it. One row per (id_type, id_value).
CREATE TABLE IF NOT EXISTS customer_ids (
    id_type     VARCHAR NOT NULL,
    id_value    VARCHAR NOT NULL,
    customer_id VARCHAR NOT NULL,
    batch_id    VARCHAR
)
