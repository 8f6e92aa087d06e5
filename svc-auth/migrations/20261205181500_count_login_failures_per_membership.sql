-- Failed logins count per (tenant, account): each membership keeps its own consecutive
-- failures and locks, so wrong passwords sent to one tenant never lock the account out of
-- another. The counters on users now count only logins without a tenant (platform
-- administrators).
ALTER TABLE auth.memberships
    ADD COLUMN IF NOT EXISTS failed_logins integer NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS lock_count    integer NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS locked_until  timestamptz;

-- Locks in force keep holding, now in each tenant of the account. Row-level security shows
-- every tenant's memberships to this (migration) transaction only with app.platform on.
SELECT set_config('app.platform', 'on', true);
UPDATE auth.memberships m
SET failed_logins = u.failed_logins, lock_count = u.lock_count, locked_until = u.locked_until
FROM auth.users u
WHERE u.id = m.user_id AND (u.failed_logins > 0 OR u.lock_count > 0 OR u.locked_until IS NOT NULL);

COMMENT ON COLUMN auth.users.failed_logins IS
    'consecutive failed logins without a tenant (platform administration); tenant logins count on auth.memberships';
