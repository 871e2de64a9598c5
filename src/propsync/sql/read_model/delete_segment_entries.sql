DELETE FROM recent_segments WHERE seg BETWEEN :first AND :last
