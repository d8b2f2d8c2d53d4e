-- Operation figures (docs/operations.md, "Monitoring"): /metrics counts
-- the notifications given up on at every scrape; a partial index keeps
-- that count as cheap as the pending one (notifications_due_idx).
CREATE INDEX notifications_failed_idx ON notifications (status)
    WHERE status = 'failed';
