-- The rows of segments :first..:last, merged into another or folded into properties.
DELETE FROM recent_properties WHERE seg BETWEEN :first AND :last
