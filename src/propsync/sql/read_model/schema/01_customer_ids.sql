-- The read model's ids (SQLite, store/read_model.py): ID_TYPE:ID_VALUE -> its customer.
CREATE TABLE IF NOT EXISTS customer_ids (
    id_type     TEXT NOT NULL,
    id_value    TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    PRIMARY KEY (id_type, id_value)
)
