//! Postgres: one schema per service, embedded migrations, and transactions scoped to a tenant
//! for row-level security.
//!
//! Every schema gets the platform's conventions (`platform/migrations`: the outbox, the audit
//! log, the consumers' processed events and the `enable_tenant_isolation(table)` function for
//! row-level security) merged by version with the service's own migrations, so a service's
//! first migration can use them ([`with_platform_migrations`]).
//!
//! Conflicts on unique constraints (a slug taken, a member added twice) are one strategy
//! everywhere: `INSERT … ON CONFLICT … DO NOTHING`, the store function answers whether the row
//! went in, and the operation turns `false` into its named outcome (`SLUG_TAKEN`). No
//! constraint names leak into Rust, and the transaction stays usable.
//!
//! Migrations run as the role of `DATABASE_URL`, which owns the schema. Queries then run as the
//! service's application role (`DB_APP_ROLE`, `formflow_<schema>`), which owns nothing, does not
//! bypass RLS and is granted its own schema's tables only, so the policies hold even for code
//! that forgets a `WHERE tenant_id = …`. Where a migration job migrates, pods log in as a role
//! that can do no more than act as the app role ([`Db::login_excess`] warns otherwise). The
//! tenant of a transaction is set with `SET LOCAL` in the query that begins it, which ends with
//! the transaction and never leaks to the next user of a pooled connection.

use std::str::FromStr;

use anyhow::Context;
use secrecy::ExposeSecret;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, Executor, PgConnection, PgPool, Postgres, Transaction};

use crate::config::DbConfig;
use crate::context::TenantId;

/// The platform's migrations, applied in every service's schema.
static PLATFORM_MIGRATOR: Migrator = sqlx::migrate!();

/// The service's migrations and the platform's, in version order: what [`Db::connect`] and
/// [`Db::migrate_only`] apply, recorded in the schema's `_sqlx_migrations`.
pub fn with_platform_migrations(service: &Migrator) -> Migrator {
    Migrator::with_migrations(
        PLATFORM_MIGRATOR
            .iter()
            .chain(service.iter())
            .cloned()
            .collect(),
    )
}

/// A service's Postgres schema and its embedded migrations:
/// `pub static SCHEMA: Schema = Schema::new(suite::FORMS, sqlx::migrate!());`
#[derive(Debug)]
pub struct Schema {
    /// The schema's name, from the suite's table.
    pub name: &'static str,
    /// The service's own migrations (the platform's are merged in when they run).
    pub migrations: Migrator,
}

impl Schema {
    /// The schema of `service`.
    pub const fn new(service: crate::suite::SuiteService, migrations: Migrator) -> Schema {
        Schema {
            name: service.schema,
            migrations,
        }
    }
}

/// A service's connection pool, bound to its schema.
#[derive(Debug, Clone)]
pub struct Db {
    pool: PgPool,
    schema: &'static str,
}

impl Db {
    /// Creates the schema if needed, runs its migrations (with the platform's) and grants its
    /// tables to the application role (unless `DB_MIGRATE` is off), and returns a pool whose
    /// connections use that role and schema.
    pub async fn connect(config: &DbConfig, schema: &Schema) -> anyhow::Result<Db> {
        let (options, app_role) = connect_options(config, schema.name)?;
        // Without DB_MIGRATE a migration job has prepared everything; the pod then needs no
        // more than the right to SET ROLE.
        if config.db_migrate {
            migrate_and_grant(options.clone(), schema, app_role.as_deref()).await?;
        }
        let schema = schema.name;

        let pool = PgPoolOptions::new()
            .max_connections(config.db_max_connections)
            .after_connect(move |connection, _metadata| {
                let app_role = app_role.clone();
                Box::pin(async move {
                    if let Some(app_role) = app_role {
                        connection
                            .execute(sqlx::AssertSqlSafe(format!("SET ROLE {app_role}")))
                            .await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .context("connecting to Postgres")?;
        let db = Db { pool, schema };
        if !config.db_migrate
            && let Some(excess) = db.login_excess().await?
        {
            tracing::warn!(
                schema,
                "the role of DATABASE_URL {excess}: a pod's login role should only be able to act as the app role (docs/deploy.md, least privilege)"
            );
        }
        Ok(db)
    }

    /// Runs the migrations and nothing else (the `--migrate-only` mode of a service, used by the
    /// deployment's migration job).
    pub async fn migrate_only(config: &DbConfig, schema: &Schema) -> anyhow::Result<()> {
        let (options, app_role) = connect_options(config, schema.name)?;
        migrate_and_grant(options, schema, app_role.as_deref()).await
    }

    /// What the role the pool logged in as (not the role its queries run as) may do beyond
    /// acting as the app role, or `None` when it may do nothing more: a superuser, a role that
    /// bypasses row-level security or one that owns the schema (or may act as its owner) could
    /// undo the policies that keep tenants apart.
    pub async fn login_excess(&self) -> sqlx::Result<Option<String>> {
        let (superuser, bypasses_rls, owns_schema): (bool, bool, bool) = sqlx::query_as(
            "SELECT r.rolsuper, r.rolbypassrls, \
                    coalesce(pg_has_role(session_user, n.nspowner, 'MEMBER'), false) \
             FROM pg_roles r LEFT JOIN pg_namespace n ON n.nspname = $1 \
             WHERE r.rolname = session_user",
        )
        .bind(self.schema)
        .fetch_one(&self.pool)
        .await?;
        let excess: Vec<&str> = [
            (superuser, "is a superuser"),
            (bypasses_rls, "bypasses row-level security"),
            (owns_schema, "owns the schema or may act as its owner"),
        ]
        .into_iter()
        .filter_map(|(holds, what)| holds.then_some(what))
        .collect();
        Ok((!excess.is_empty()).then(|| excess.join(", ")))
    }

    /// The pool, for queries that touch no tenant data (outbox relay, health checks).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The service's schema.
    pub fn schema(&self) -> &'static str {
        self.schema
    }

    /// A transaction in which row-level security admits only `tenant`'s rows.
    pub async fn tenant_tx(
        &self,
        tenant: TenantId,
    ) -> sqlx::Result<Transaction<'static, Postgres>> {
        // One round trip: the setting goes with the BEGIN, in the same simple query. A tenant
        // id is a UUID (hex digits and dashes), safe to quote as a literal.
        self.pool
            .begin_with(sqlx::AssertSqlSafe(format!(
                "BEGIN; SET LOCAL app.tenant_id = '{tenant}'"
            )))
            .await
    }

    /// A transaction in which row-level security admits every tenant's rows. Only for
    /// operations already authorised as cross-tenant (a platform administrator's, a service's,
    /// or tenant resolution before any tenant is known).
    pub async fn platform_tx(&self) -> sqlx::Result<Transaction<'static, Postgres>> {
        self.pool
            .begin_with("BEGIN; SET LOCAL app.platform = 'on'")
            .await
    }
}

/// The options of connections to `schema` (its search path) and the role its queries run as,
/// both checked to be plain identifiers.
fn connect_options(
    config: &DbConfig,
    schema: &'static str,
) -> anyhow::Result<(PgConnectOptions, Option<String>)> {
    ensure_identifier(schema)?;
    let url = config.url()?;
    let options = PgConnectOptions::from_str(url.expose_secret())
        .context("DATABASE_URL is not a valid Postgres URL")?
        .options([("search_path", schema)]);
    let app_role = config.app_role(schema);
    if let Some(app_role) = &app_role {
        ensure_identifier(app_role)?;
    }
    Ok((options, app_role))
}

/// Runs the schema's migrations and, when queries run as an app role, prepares it.
async fn migrate_and_grant(
    options: PgConnectOptions,
    schema: &Schema,
    app_role: Option<&str>,
) -> anyhow::Result<()> {
    migrate(options.clone(), schema.name, &schema.migrations).await?;
    if let Some(app_role) = app_role {
        prepare_app_role(options, schema.name, app_role).await?;
    }
    Ok(())
}

async fn migrate(
    options: PgConnectOptions,
    schema: &str,
    migrator: &Migrator,
) -> anyhow::Result<()> {
    let mut connection = PgConnection::connect_with(&options)
        .await
        .context("connecting to Postgres to migrate")?;
    // Two replicas starting together may both try to create the schema; the advisory lock
    // serialises them (the migrator takes its own lock afterwards).
    connection
        .execute("SELECT pg_advisory_lock(7236017316591420)")
        .await?;
    let created = connection
        .execute(sqlx::AssertSqlSafe(format!(
            "CREATE SCHEMA IF NOT EXISTS {schema}"
        )))
        .await;
    connection
        .execute("SELECT pg_advisory_unlock(7236017316591420)")
        .await?;
    created.with_context(|| format!("creating schema {schema}"))?;
    with_platform_migrations(migrator)
        .run(&mut connection)
        .await
        .with_context(|| format!("migrating schema {schema}"))?;
    connection.close().await?;
    Ok(())
}

/// Makes sure the application role exists, cannot bypass RLS, may be assumed by the migrating
/// role, and can use the schema's tables.
async fn prepare_app_role(
    options: PgConnectOptions,
    schema: &str,
    app_role: &str,
) -> anyhow::Result<()> {
    let mut connection = PgConnection::connect_with(&options)
        .await
        .context("connecting to Postgres to prepare the application role")?;
    let existing: Option<(bool, bool)> =
        sqlx::query_as("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = $1")
            .bind(app_role)
            .fetch_optional(&mut connection)
            .await?;
    match existing {
        Some((is_superuser, bypasses_rls)) => anyhow::ensure!(
            !is_superuser && !bypasses_rls,
            "DB_APP_ROLE {app_role} is a superuser or bypasses RLS; tenant isolation needs a role that does neither"
        ),
        None => {
            // Roles are cluster-wide, so concurrent services (or tests) may race to create it.
            let created = connection
                .execute(sqlx::AssertSqlSafe(format!(
                    "CREATE ROLE {app_role} NOLOGIN"
                )))
                .await;
            if let Err(error) = created {
                let already_exists = error
                    .as_database_error()
                    .and_then(|database_error| database_error.code())
                    .is_some_and(|code| code == "42710" || code == "23505");
                if !already_exists {
                    return Err(error).with_context(|| {
                        format!("creating DB_APP_ROLE {app_role} (create it, or grant CREATEROLE)")
                    });
                }
            }
        }
    }
    // SET ROLE needs membership; superusers have it implicitly.
    let (is_member,): (bool,) = sqlx::query_as(
        "SELECT rolsuper OR pg_has_role(current_user, $1, 'MEMBER') FROM pg_roles WHERE rolname = current_user",
    )
    .bind(app_role)
    .fetch_one(&mut connection)
    .await?;
    let statements = [
        (!is_member).then(|| format!("GRANT {app_role} TO current_user")),
        Some(format!("GRANT USAGE ON SCHEMA {schema} TO {app_role}")),
        Some(format!(
            "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} TO {app_role}"
        )),
        Some(format!(
            "GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {schema} TO {app_role}"
        )),
    ];
    for statement in statements.into_iter().flatten() {
        connection
            .execute(sqlx::AssertSqlSafe(statement.clone()))
            .await
            .with_context(|| format!("preparing DB_APP_ROLE: {statement}"))?;
    }
    connection.close().await?;
    Ok(())
}

/// Schema and role names are spliced into SQL, so only plain lowercase identifiers are allowed.
fn ensure_identifier(name: &str) -> anyhow::Result<()> {
    let mut characters = name.chars();
    let plain = characters
        .next()
        .is_some_and(|first| first.is_ascii_lowercase() || first == '_')
        && characters.all(|character| {
            character.is_ascii_lowercase() || character.is_ascii_digit() || character == '_'
        })
        && name.len() <= 63;
    anyhow::ensure!(plain, "{name:?} is not a plain lowercase SQL identifier");
    Ok(())
}

/// Declares an enum stored in Postgres as text: the enum (Debug, Clone, Copy, PartialEq, Eq,
/// Hash), `as_str` (its stored form) and `parse` (the value stored as a text, `None` for any
/// other).
///
/// ```ignore
/// platform::stored_enum! {
///     /// Lifecycle state of a delivery.
///     DeliveryState {
///         /// Waiting for an attempt.
///         Pending => "pending",
///         /// Sent.
///         Delivered => "delivered",
///     }
/// }
/// ```
#[macro_export]
macro_rules! stored_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$variant_meta:meta])* $variant:ident => $text:literal,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$variant_meta])* $variant,)*
        }

        impl $name {
            /// The stored form.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)*
                }
            }

            /// The value stored as `text`.
            pub fn parse(text: &str) -> Option<Self> {
                match text {
                    $($text => Some($name::$variant),)*
                    _ => None,
                }
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_identifiers_are_spliced_into_sql() {
        assert!(ensure_identifier("tenant").is_ok());
        assert!(ensure_identifier("formflow_app").is_ok());
        assert!(ensure_identifier("_x1").is_ok());
        for bad in ["", "Tenant", "1abc", "a-b", "a;drop", "a b", "\"a\""] {
            assert!(ensure_identifier(bad).is_err(), "{bad:?}");
        }
    }
}
