-- The lookup by hash of layout 4, built from id_keys (a crashed earlier attempt left nothing
-- committed, but an older layout's upgrade may have created the empty table).
DELETE FROM id_hashes
