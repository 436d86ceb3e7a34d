-- 020 down: names are matched by their own identity key only again (the aliases go).
DROP TABLE IF EXISTS silver_track_aliases;
