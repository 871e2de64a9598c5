-- Every row of id_keys by its id_hash, sorted by id_hash except for the ids added since the last
-- sort (identity.sort_id_hashes): resolving a small batch's ids reads only the row groups their
-- hashes fall in, where a join on the text ids reads all of id_keys. Hashes may collide: the
-- lookup confirms each candidate against id_keys, which is kept in customer_key order.
CREATE TABLE IF NOT EXISTS id_hashes (
    id_hash      UBIGINT NOT NULL,
    customer_key BIGINT  NOT NULL
)
