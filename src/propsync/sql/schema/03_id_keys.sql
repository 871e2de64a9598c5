-- Every known customer id and the customer that owns it. One row per (id_type, id_value).
CREATE TABLE IF NOT EXISTS id_keys (
    id_type      VARCHAR NOT NULL,
    id_value     VARCHAR NOT NULL,
    customer_key BIGINT  NOT NULL,
    batch_id     VARCHAR
)
