//! The outbox on a real Postgres and RabbitMQ: an event that carries a secret waits sealed, is
//! published whole, and leaves no secret behind once published.

use std::sync::Arc;
use std::time::Duration;

use platform::amqp::Publisher;
use platform::context::TenantId;
use platform::db::{Db, Schema};
use platform::outbox::{EventSealer, Outbox};
use platform::testing::{EventObserver, TestInfra};
use proto::formflow::events::v1::{PasswordResetRequested, TenantSuspended};
use sqlx::migrate::Migrator;

const SCHEMA: &str = "outbox_test";
const TOKEN: &str = "ffp_the-one-time-token-nobody-may-read";

/// Stands in for a service's cipher: the bytes are scrambled and bound to their context, so
/// the test sees the secret is neither stored in clear nor opened under another row's context.
struct ScramblingSealer;

impl EventSealer for ScramblingSealer {
    fn seal(&self, context: &str, plaintext: &[u8]) -> anyhow::Result<Vec<u8>> {
        let mut sealed: Vec<u8> = plaintext.iter().map(|byte| byte ^ 0x5a).collect();
        sealed.extend_from_slice(context.as_bytes());
        Ok(sealed)
    }

    fn open(&self, context: &str, sealed: &[u8]) -> anyhow::Result<Vec<u8>> {
        let body = sealed
            .strip_suffix(context.as_bytes())
            .ok_or_else(|| anyhow::anyhow!("sealed for another context"))?;
        Ok(body.iter().map(|byte| byte ^ 0x5a).collect())
    }
}

fn reset_requested() -> PasswordResetRequested {
    PasswordResetRequested {
        email: "ada@example.com".into(),
        token: TOKEN.into(),
        ..PasswordResetRequested::default()
    }
}

async fn fixture() -> (TestInfra, Db) {
    let infra = TestInfra::new().await;
    let schema = Schema {
        name: SCHEMA,
        migrations: Migrator::with_migrations(Vec::new()),
    };
    let db = Db::connect(&infra.db, &schema).await.unwrap();
    (infra, db)
}

/// Every outbox row as text (payload and sealed bytes together), to search for the secret.
async fn rows_as_text(db: &Db) -> Vec<(String, bool)> {
    sqlx::query_as(
        "SELECT payload::text || coalesce(encode(sealed, 'escape'), ''), published_at IS NOT NULL \
         FROM outbox_test.outbox ORDER BY id",
    )
    .fetch_all(db.pool())
    .await
    .unwrap()
}

#[tokio::test]
async fn a_sealed_event_waits_encrypted_is_published_whole_and_leaves_no_secret() {
    let (infra, db) = fixture().await;
    let outbox = Outbox::new(SCHEMA).with_sealer(Arc::new(ScramblingSealer));
    let mut observer =
        EventObserver::start(&infra.amqp, &["auth.password_reset.requested.#"]).await;
    let tenant = TenantId::generate();

    let mut transaction = db.pool().begin().await.unwrap();
    outbox
        .enqueue_sealed(&mut transaction, Some(tenant), reset_requested(), |event| {
            event.token.clear();
        })
        .await
        .unwrap();
    transaction.commit().await.unwrap();

    let (payload, sealed): (serde_json::Value, Option<Vec<u8>>) =
        sqlx::query_as("SELECT payload, sealed FROM outbox_test.outbox")
            .fetch_one(db.pool())
            .await
            .unwrap();
    assert_eq!(payload["data"]["email"], "ada@example.com", "{payload}");
    assert!(
        payload["data"].get("token").is_none_or(|token| token == ""),
        "{payload}"
    );
    assert!(sealed.is_some(), "the whole event waits sealed");
    let pending = rows_as_text(&db).await;
    assert!(!pending[0].0.contains(TOKEN), "{pending:?}");

    let relay = outbox.relay(
        db.pool().clone(),
        Publisher::new(&infra.amqp, "outbox-test"),
    );
    assert_eq!(relay.relay_batch().await.unwrap(), 1);
    let received = observer.receive(1, Duration::from_secs(10)).await;
    assert_eq!(received[0].body["data"]["token"], TOKEN);
    assert_eq!(received[0].body["tenant_id"], tenant.to_string());

    let published = rows_as_text(&db).await;
    assert!(published[0].1, "marked published");
    assert!(!published[0].0.contains(TOKEN), "{published:?}");
    let (sealed,): (Option<Vec<u8>>,) = sqlx::query_as("SELECT sealed FROM outbox_test.outbox")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(sealed, None, "the sealed envelope is erased once published");
}

#[tokio::test]
async fn a_sealed_event_that_cannot_be_opened_stops_the_relay_after_the_events_before_it() {
    let (infra, db) = fixture().await;
    let sealing = Outbox::new(SCHEMA).with_sealer(Arc::new(ScramblingSealer));
    let plain = Outbox::new(SCHEMA);
    let mut observer = EventObserver::start(&infra.amqp, &["#"]).await;

    let mut transaction = db.pool().begin().await.unwrap();
    assert!(
        plain
            .enqueue_sealed(&mut transaction, None, reset_requested(), |_| {})
            .await
            .is_err(),
        "an outbox without a sealer refuses to keep a secret"
    );
    let suspended = TenantSuspended {
        tenant: None,
        reason: "unpaid".into(),
    };
    plain
        .enqueue(&mut transaction, None, suspended)
        .await
        .unwrap();
    sealing
        .enqueue_sealed(&mut transaction, None, reset_requested(), |event| {
            event.token.clear();
        })
        .await
        .unwrap();
    transaction.commit().await.unwrap();

    // A replica without the key publishes what it can and leaves the sealed event waiting.
    let keyless = plain.relay(
        db.pool().clone(),
        Publisher::new(&infra.amqp, "outbox-test"),
    );
    assert!(keyless.relay_batch().await.is_err());
    let received = observer.receive(1, Duration::from_secs(10)).await;
    assert_eq!(received[0].kind, "tenant.suspended");
    let rows = rows_as_text(&db).await;
    assert_eq!(
        rows.iter().map(|row| row.1).collect::<Vec<_>>(),
        [true, false]
    );

    let keyed = sealing.relay(
        db.pool().clone(),
        Publisher::new(&infra.amqp, "outbox-test"),
    );
    assert_eq!(keyed.relay_batch().await.unwrap(), 1);
    let received = observer.receive(1, Duration::from_secs(10)).await;
    assert_eq!(received[0].body["data"]["token"], TOKEN);
}
