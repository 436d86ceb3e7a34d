-- 018 down: the lookup answer journal goes (answers not yet recorded are asked again).
DROP TABLE IF EXISTS enrichment_lookup_answers;
