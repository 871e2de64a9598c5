SELECT coalesce(max(seg), 0) + 1 FROM recent_segments
