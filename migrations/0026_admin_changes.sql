-- The back office's audit view reads admin changes newest first.
CREATE INDEX cw_events_admin_changes ON cw_events (sequence DESC)
    WHERE kind->>'type' = 'admin_change';
