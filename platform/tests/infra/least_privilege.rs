//! Least privilege in Postgres, with a pod's own credentials: a login role that may only act as
//! its service's app role reads no other tenant's rows in a tenant's transaction, no other
//! service's schema, and cannot undo row-level security, become the owner or another service's
//! role, or create anything.

use std::panic::AssertUnwindSafe;

use futures_util::FutureExt;
use platform::config::DbConfig;
use platform::context::TenantId;
use platform::db::{Db, Schema};
use platform::testing::TestInfra;
use secrecy::ExposeSecret;
use sqlx::migrate::Migrator;
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

const ALPHA: &str = "privilege_alpha";
const BETA: &str = "privilege_beta";

fn schema(name: &'static str) -> Schema {
    Schema {
        name,
        migrations: Migrator::with_migrations(Vec::new()),
    }
}

/// The SQLSTATE of a refused statement (insufficient_privilege is 42501).
fn sqlstate(error: &sqlx::Error) -> String {
    error
        .as_database_error()
        .and_then(|error| error.code())
        .map(|code| code.into_owned())
        .unwrap_or_else(|| panic!("not a database error: {error}"))
}

async fn write_audit_row(db: &Db, tenant: TenantId) -> sqlx::Result<()> {
    let mut transaction = db.tenant_tx(tenant).await?;
    sqlx::query(
        "INSERT INTO audit_log (id, tenant_id, actor, action, target, details, request_id) \
         VALUES ($1, $2, 'users/ada', 'test.write', 'things/1', '{}', 'req-1')",
    )
    .bind(Uuid::new_v4())
    .bind(tenant.as_uuid())
    .execute(&mut *transaction)
    .await?;
    transaction.commit().await
}

#[tokio::test]
async fn a_pods_login_role_reaches_only_its_tenants_rows_in_its_own_schema() {
    let infra = TestInfra::new().await;
    let (alpha, beta) = (schema(ALPHA), schema(BETA));
    // The migration job's part, as the owner: both services' schemas and app roles.
    Db::migrate_only(&infra.db, &alpha).await.unwrap();
    Db::migrate_only(&infra.db, &beta).await.unwrap();

    // The operator's part: a login role for alpha's pods, a member of alpha's app role only.
    let owner_url = infra.db.url().unwrap().expose_secret().to_owned();
    let mut admin = PgConnection::connect(&owner_url).await.unwrap();
    let login = format!("ff_pod_{}", Uuid::new_v4().simple());
    let password = Uuid::new_v4().simple().to_string();
    for statement in [
        format!("CREATE ROLE {login} LOGIN PASSWORD '{password}'"),
        format!("GRANT formflow_{ALPHA} TO {login}"),
    ] {
        sqlx::query(sqlx::AssertSqlSafe(statement))
            .execute(&mut admin)
            .await
            .unwrap();
    }
    let mut pod_url = url::Url::parse(&owner_url).unwrap();
    pod_url.set_username(&login).unwrap();
    pod_url.set_password(Some(&password)).unwrap();
    let pod_config = DbConfig {
        db_migrate: false,
        ..DbConfig::for_url(pod_url.as_str())
    };

    // The login role is cluster-wide: dropped whatever the checks find.
    let outcome = AssertUnwindSafe(check_pod(pod_config, infra.db.clone()))
        .catch_unwind()
        .await;
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP ROLE {login}")))
        .execute(&mut admin)
        .await
        .unwrap();
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

async fn check_pod(pod_config: DbConfig, owner_config: DbConfig) {
    let pod = Db::connect(&pod_config, &schema(ALPHA)).await.unwrap();
    assert_eq!(pod.login_excess().await.unwrap(), None);
    let owner = Db::connect(&owner_config, &schema(ALPHA)).await.unwrap();
    let excess = owner.login_excess().await.unwrap().unwrap_or_default();
    assert!(excess.contains("owns the schema"), "{excess}");

    let (acme, globex) = (
        TenantId::from(Uuid::new_v4()),
        TenantId::from(Uuid::new_v4()),
    );
    write_audit_row(&pod, acme).await.unwrap();
    write_audit_row(&pod, globex).await.unwrap();

    let mut connection = pod.pool().acquire().await.unwrap();
    let (session, current): (String, String) =
        sqlx::query_as("SELECT session_user::text, current_user::text")
            .fetch_one(&mut *connection)
            .await
            .unwrap();
    assert!(session.starts_with("ff_pod_"), "{session}");
    assert_eq!(current, format!("formflow_{ALPHA}"));
    drop(connection);

    // In a tenant's transaction: that tenant's rows only; the other's can be neither changed
    // nor written.
    let mut transaction = pod.tenant_tx(acme).await.unwrap();
    let seen: Vec<Uuid> = sqlx::query_scalar("SELECT tenant_id FROM audit_log")
        .fetch_all(&mut *transaction)
        .await
        .unwrap();
    assert_eq!(seen, vec![acme.as_uuid()]);
    let changed = sqlx::query("DELETE FROM audit_log WHERE tenant_id = $1")
        .bind(globex.as_uuid())
        .execute(&mut *transaction)
        .await
        .unwrap();
    assert_eq!(changed.rows_affected(), 0);
    transaction.rollback().await.unwrap();
    let mut transaction = pod.tenant_tx(acme).await.unwrap();
    let foreign = sqlx::query(
        "INSERT INTO audit_log (id, tenant_id, actor, action, target, details, request_id) \
         VALUES ($1, $2, 'users/mallory', 'test.write', 'things/2', '{}', 'req-2')",
    )
    .bind(Uuid::new_v4())
    .bind(globex.as_uuid())
    .execute(&mut *transaction)
    .await
    .unwrap_err();
    assert_eq!(sqlstate(&foreign), "42501", "{foreign}");
    transaction.rollback().await.unwrap();

    // Outside any tenant's transaction nothing is visible.
    let unscoped: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_log")
        .fetch_one(pod.pool())
        .await
        .unwrap();
    assert_eq!(unscoped, 0);

    // Nothing the login role can do widens that: each of these is refused.
    let owner_role: String =
        sqlx::query_scalar("SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = $1")
            .bind(ALPHA)
            .fetch_one(pod.pool())
            .await
            .unwrap();
    let refused = [
        format!("SELECT count(*) FROM {BETA}.audit_log"),
        format!("SET ROLE formflow_{BETA}"),
        format!("SET ROLE {owner_role}"),
        "ALTER TABLE audit_log DISABLE ROW LEVEL SECURITY".to_owned(),
        "ALTER TABLE audit_log NO FORCE ROW LEVEL SECURITY".to_owned(),
        "DROP POLICY tenant_isolation ON audit_log".to_owned(),
        "ALTER ROLE CURRENT_USER BYPASSRLS".to_owned(),
        "SET session_replication_role = replica".to_owned(),
        format!("CREATE TABLE {ALPHA}.stash (id int)"),
        "CREATE TABLE public.stash (id int)".to_owned(),
        format!("GRANT formflow_{BETA} TO CURRENT_USER"),
    ];
    let mut connection = pod.pool().acquire().await.unwrap();
    for statement in refused {
        let error = sqlx::query(sqlx::AssertSqlSafe(statement.clone()))
            .execute(&mut *connection)
            .await
            .expect_err(&statement);
        assert_eq!(sqlstate(&error), "42501", "{statement}: {error}");
    }
    // Without the app role (RESET ROLE) the login role still sees no row.
    sqlx::query("RESET ROLE")
        .execute(&mut *connection)
        .await
        .unwrap();
    let bare = sqlx::query_scalar::<_, i64>("SELECT count(*) FROM audit_log")
        .fetch_one(&mut *connection)
        .await;
    assert!(matches!(bare, Ok(0) | Err(_)), "{bare:?}");
    connection.close().await.unwrap();
}
