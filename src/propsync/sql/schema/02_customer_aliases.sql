-- Internal ids of customers merged away, pointing at the customer that absorbed them.
CREATE TABLE IF NOT EXISTS customer_aliases (
    old_customer_id VARCHAR NOT NULL,
    customer_id     VARCHAR NOT NULL,
    batch_id        VARCHAR
)
