-- The newer-wins order, the one rule every path that stores a property keeps: updates compare as
-- (update_ts, value) pairs, a legacy value (update_ts NULL) older than any timestamp, and two
-- updates of the same microsecond settled by their canonical JSON text, so that the state never
-- depends on the order updates arrive in. This is its time part, for statements that compare
-- times first and values only for ties (16_newer_wins_key.sql, 17_newer_wins.sql: the rest).
CREATE OR REPLACE MACRO newer_wins_ts(update_ts) AS coalesce(update_ts, -1)
