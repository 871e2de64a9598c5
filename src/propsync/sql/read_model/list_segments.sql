SELECT seg, level, rows FROM recent_segments ORDER BY seg
