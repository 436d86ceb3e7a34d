-- 021 down: the request reply journal goes (replies not yet recorded are asked again).
DROP TABLE IF EXISTS enrichment_request_replies;
