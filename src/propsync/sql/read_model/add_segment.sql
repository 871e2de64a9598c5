INSERT INTO recent_segments (seg, level, rows) VALUES (?1, ?2, ?3)
