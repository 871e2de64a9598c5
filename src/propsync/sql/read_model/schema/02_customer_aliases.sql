-- Internal ids of customers merged away -> the customer that absorbed them.
CREATE TABLE IF NOT EXISTS customer_aliases (
    old_customer_id TEXT NOT NULL PRIMARY KEY,
    customer_id     TEXT NOT NULL
)
