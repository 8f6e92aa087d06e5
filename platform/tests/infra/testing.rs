//! The test helpers themselves: test databases that runs outside `scripts/test.sh` leave
//! behind are dropped after a day.

use platform::testing::TestInfra;

async fn database_exists(admin: &mut sqlx::PgConnection, name: &str) -> bool {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
        .bind(name)
        .fetch_one(admin)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_new_test_drops_test_databases_older_than_a_day_and_no_others() {
    // Any database of the server sees and creates them all: the first test's will do.
    let mut admin = TestInfra::new().await.admin_connection().await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let name = |age: u64| format!("ff_test_{}_{}", now - age, uuid::Uuid::new_v4().simple());
    let stale = name(25 * 3600);
    let recent = name(23 * 3600);
    for database in [&stale, &recent] {
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {database}")))
            .execute(&mut admin)
            .await
            .unwrap();
    }

    let infra = TestInfra::new().await;

    assert!(
        !database_exists(&mut admin, &stale).await,
        "{stale} is left"
    );
    assert!(
        database_exists(&mut admin, &recent).await,
        "{recent} was dropped"
    );
    assert!(database_exists(&mut admin, &infra.database_name).await);
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE {recent}")))
        .execute(&mut admin)
        .await
        .unwrap();
}
