-- Notifications whose content holds a secret (an invitation or a password reset link): their
-- content is sealed under NOTIFY_ENCRYPTION_KEYS in `sealed_content` (the plain columns stay
-- empty, `data` holds nothing) and erased once every delivery of the notification is done.

ALTER TABLE notify.notifications
    ADD COLUMN sealed         boolean NOT NULL DEFAULT false,
    ADD COLUMN sealed_content bytea;
