-- The newer-wins order (15_newer_wins_ts.sql) as one sort or arg_max key: the greatest key wins.
CREATE OR REPLACE MACRO newer_wins_key(update_ts, value) AS
    {'ts': newer_wins_ts(update_ts), 'value': value}
