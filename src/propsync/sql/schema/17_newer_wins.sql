-- Whether update (update_ts, value) beats (other_ts, other_value) in the newer-wins order
-- (15_newer_wins_ts.sql); the same as comparing their newer_wins_key, in scalar comparisons a
-- join's filter evaluates without building structs.
CREATE OR REPLACE MACRO newer_wins(update_ts, value, other_ts, other_value) AS
    newer_wins_ts(update_ts) > newer_wins_ts(other_ts)
    OR (newer_wins_ts(update_ts) = newer_wins_ts(other_ts) AND value > other_value)
