-- Notifications past NOTIFY_RETENTION_DAYS are deleted across tenants, oldest first.

CREATE INDEX notifications_by_age ON notify.notifications (created_at);
