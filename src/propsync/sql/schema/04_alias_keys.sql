-- Customers merged away, pointing at the customer that absorbed them.
CREATE TABLE IF NOT EXISTS alias_keys (
    old_customer_key BIGINT NOT NULL,
    customer_key     BIGINT NOT NULL,
    batch_id         VARCHAR
)
