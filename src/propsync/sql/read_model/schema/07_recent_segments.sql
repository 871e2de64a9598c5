-- The live segments of recent_properties, oldest first. level: 0 for a follow's, n + 1 for one
-- merged from segments of level <= n; rows: how many it was written with.
CREATE TABLE IF NOT EXISTS recent_segments (
    seg   INTEGER NOT NULL PRIMARY KEY,
    level INTEGER NOT NULL,
    rows  INTEGER NOT NULL
)
