-- A batch without merges hands no properties to survivors (see keep_merged_winners.sql).
CREATE OR REPLACE TEMP TABLE merged_winners (
    customer_key BIGINT,
    property_id  INTEGER,
    value        VARCHAR,
    update_ts    BIGINT,
    batch_id     VARCHAR
)
