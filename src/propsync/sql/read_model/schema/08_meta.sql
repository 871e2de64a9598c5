-- version: the published version the model equals; run_stamp: the identity of that version's run
-- file (or "none"), which tells a recreated warehouse apart; format: this layout.
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT NOT NULL PRIMARY KEY,
    value TEXT
)
