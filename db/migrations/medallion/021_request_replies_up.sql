-- 021 request reply journal (issue 20: a lookup that already has its provider's answer never
-- asks the provider again). 018 journals a lookup's whole answer once it is complete; a lookup
-- of several requests (a search, then the release page) that fails part way, or whose worker
-- is killed part way, used to be asked again from its first request. Each request a lookup
-- task gets an answer to (GET, HTTP 200 with a JSON body or 404, as the provider judged it) is
-- written here as it arrives; the next delivery of the lookup (task retry, redelivery, sweeper
-- re-send) loads its job's replies with the lease and is answered from them before the network.
-- record_outcomes deletes a lookup's rows with its 018 row, in the recording transaction.
--   * request_key: method, URL and sorted query, credentials redacted (as stored responses).
--   * job_id: the lookup's job (a batch request: the first job of its message).
--   * body: the decoded body, redacted at the HTTP edge like every stored response; is_json:
--     false for a 404 whose body was not JSON (kept as {"_text": ...}).
-- Needs 006. Re-runnable.
CREATE TABLE IF NOT EXISTS enrichment_request_replies (
    job_id      UUID        NOT NULL,
    provider    TEXT        NOT NULL,
    request_key TEXT        NOT NULL,
    status_code INTEGER     NOT NULL,
    body        JSONB       NOT NULL,
    is_json     BOOLEAN     NOT NULL DEFAULT true,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT pk_enrichment_request_replies PRIMARY KEY (job_id, provider, request_key),
    CONSTRAINT fk_enrichment_request_replies_job_id
        FOREIGN KEY (job_id, provider) REFERENCES enrichment_lookups (job_id, provider)
        ON DELETE CASCADE
);
