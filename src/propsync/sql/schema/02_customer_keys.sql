-- Every customer ever created, merged-away ones included: its internal key (what the writer
-- joins on) and its internal text id (what the outside sees: the md5 of the id that created it).
-- Keys come from customer_key_seq, so the table is sorted by key and a join on a few keys reads
-- only the row groups they fall in.
CREATE TABLE IF NOT EXISTS customer_keys (
    customer_key BIGINT  NOT NULL,
    customer_id  VARCHAR NOT NULL
)
