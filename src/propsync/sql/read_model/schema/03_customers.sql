-- The model's own integer key of each customer that has properties (store/read_model.py, "Keys"):
-- properties and recent_properties are keyed by it, not by the 32-character id, which halved
-- the model. A build draws the keys in id order, a follow the next ones for customers it meets.
CREATE TABLE IF NOT EXISTS customers (
    customer_key INTEGER PRIMARY KEY,
    customer_id  TEXT NOT NULL UNIQUE
)
