-- The properties followed since the last fold, one segment per follow (store/read_model.py):
-- keyed by segment first, so a follow appends its rows in key order at the B-tree's end instead
-- of dirtying a page of `properties` per row. The newest segment's row of a key wins; any row
-- here is newer than `properties`' row of the same key.
CREATE TABLE IF NOT EXISTS recent_properties (
    seg          INTEGER NOT NULL,
    customer_key INTEGER NOT NULL,
    property_key INTEGER NOT NULL,
    value        TEXT NOT NULL,
    update_ts    INTEGER,
    PRIMARY KEY (seg, customer_key, property_key)
) WITHOUT ROWID
