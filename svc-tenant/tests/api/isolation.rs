//! Row-level security, the second wall: even SQL without a tenant filter sees only the
//! transaction's tenant. And migrations are idempotent.

use platform::db::Db;
use sqlx::Row;
use svc_tenant::app::SCHEMA;

use crate::helpers::{TestApp, id_of};

#[tokio::test]
async fn queries_see_only_the_transactions_tenant() {
    let app = TestApp::spawn().await;
    let acme = app
        .create_tenant_with(proto::formflow::tenant::v1::Tenant {
            slug: "acme".into(),
            display_name: "Acme".into(),
            domains: vec!["forms.acme.com".into()],
            ..Default::default()
        })
        .await;
    let globex = app.create_tenant("globex").await;
    let db = Db::connect(&app.infra.db, &SCHEMA).await.unwrap();

    let role: String = sqlx::query("SELECT current_user::text")
        .fetch_one(db.pool())
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        role, "formflow_tenant",
        "queries run as svc-tenant's application role"
    );

    let mut acme_tx = db.tenant_tx(id_of(&acme)).await.unwrap();
    for table in [
        "tenant.tenants",
        "tenant.tenant_domains",
        "tenant.audit_log",
    ] {
        let column = if table == "tenant.tenants" {
            "id"
        } else {
            "tenant_id"
        };
        let tenants: Vec<uuid::Uuid> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT DISTINCT {column} FROM {table}"
        )))
        .fetch_all(&mut *acme_tx)
        .await
        .unwrap();
        assert_eq!(tenants, [id_of(&acme).as_uuid()], "{table}");
    }
    let changed = sqlx::query("UPDATE tenant.tenants SET display_name = 'hijacked' WHERE id = $1")
        .bind(id_of(&globex).as_uuid())
        .execute(&mut *acme_tx)
        .await
        .unwrap()
        .rows_affected();
    assert_eq!(changed, 0, "another tenant's row is out of reach");
    let planted = sqlx::query(
        "INSERT INTO tenant.tenant_domains (domain, tenant_id) VALUES ('evil.example.com', $1)",
    )
    .bind(id_of(&globex).as_uuid())
    .execute(&mut *acme_tx)
    .await;
    assert!(
        planted.is_err(),
        "rows for another tenant cannot be written"
    );
    acme_tx.rollback().await.unwrap();

    let unscoped: i64 = sqlx::query("SELECT count(*) FROM tenant.tenants")
        .fetch_one(db.pool())
        .await
        .unwrap()
        .get(0);
    assert_eq!(unscoped, 0, "without a tenant, nothing is visible");

    let mut platform_tx = db.platform_tx().await.unwrap();
    let everyone: i64 = sqlx::query("SELECT count(*) FROM tenant.tenants")
        .fetch_one(&mut *platform_tx)
        .await
        .unwrap()
        .get(0);
    assert_eq!(everyone, 2);
    platform_tx.commit().await.unwrap();

    // The tenant setting ends with its transaction: the pooled connection forgets it.
    let mut connection = db.pool().acquire().await.unwrap();
    let leaked: Option<String> =
        sqlx::query_scalar("SELECT nullif(current_setting('app.tenant_id', true), '')")
            .fetch_one(&mut *connection)
            .await
            .unwrap();
    assert_eq!(leaked, None);
}

#[tokio::test]
async fn migrations_run_twice_without_harm() {
    let infra = platform::testing::TestInfra::new().await;
    Db::migrate_only(&infra.db, &SCHEMA).await.unwrap();
    Db::migrate_only(&infra.db, &SCHEMA).await.unwrap();
    let db = Db::connect(&infra.db, &SCHEMA).await.unwrap();
    let applied: i64 = sqlx::query("SELECT count(*) FROM tenant._sqlx_migrations")
        .fetch_one(db.pool())
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        applied as usize,
        platform::db::with_platform_migrations(&SCHEMA.migrations)
            .iter()
            .count()
    );
}
