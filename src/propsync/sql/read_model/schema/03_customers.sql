-- The warehouse's integer key of each customer holding an id (store/read_model.py, "Keys"):
-- properties and recent_properties are keyed by it, not by the 32-character id, which halved
-- the model. Every row of the published files and runs carries it.
CREATE TABLE IF NOT EXISTS customers (
    customer_key INTEGER PRIMARY KEY,
    customer_id  TEXT NOT NULL UNIQUE
)
