//! Brute-force protection: account lockout with growing locks, the per-address limit, and the
//! record of every attempt.

use std::time::Duration;

use platform::amqp::{Consumer, Outcome};
use platform::context::TenantId;
use platform::testing::{error_metadata, error_reason};
use proto::formflow::auth::v1 as wire;
use sqlx::Row;
use tonic::Code;

use crate::helpers::{Options, PASSWORD, TestApp, tenant_of};

/// Fails `count` logins with a wrong password; returns the last answer.
async fn fail(app: &TestApp, tenant: TenantId, count: usize) -> tonic::Status {
    let mut last = None;
    for _ in 0..count {
        last = Some(
            app.login(tenant, "ada@example.com", "wrong-password-xyz")
                .await
                .unwrap_err(),
        );
    }
    last.unwrap()
}

fn locked_for(status: &tonic::Status) -> chrono::Duration {
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    let (reason, metadata) = (error_reason(status), error_metadata(status));
    assert_eq!(reason, "ACCOUNT_LOCKED");
    let until = chrono::DateTime::parse_from_rfc3339(&metadata["locked_until"]).unwrap();
    until.with_timezone(&chrono::Utc) - chrono::Utc::now()
}

#[tokio::test]
async fn repeated_failures_lock_the_account_for_a_growing_while() {
    let app = TestApp::spawn().await;
    let tenant = tenant_of(&app.sign_up("acme", "ada@example.com").await);
    let mut events = Consumer::start(
        &app.infra.amqp,
        "test",
        "test.login-failures",
        &["auth.login.failed.#"],
        20,
    )
    .await
    .unwrap();

    // Below the threshold (3 in tests) failures only answer UNAUTHENTICATED.
    assert_eq!(fail(&app, tenant, 2).await.code(), Code::Unauthenticated);
    // The third locks (2 s in tests), and even the right password is refused meanwhile.
    let first_lock = locked_for(&fail(&app, tenant, 1).await);
    assert!(first_lock <= chrono::Duration::seconds(2));
    locked_for(
        &app.login(tenant, "ada@example.com", PASSWORD)
            .await
            .unwrap_err(),
    );

    // Failing again after the lock locks for twice as long.
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    assert_eq!(fail(&app, tenant, 2).await.code(), Code::Unauthenticated);
    let second_lock = locked_for(&fail(&app, tenant, 1).await);
    assert!(
        second_lock > chrono::Duration::milliseconds(3_000),
        "{second_lock}"
    );

    // Once it ends, the right password works.
    tokio::time::sleep(second_lock.to_std().unwrap() + Duration::from_millis(100)).await;
    app.login(tenant, "ada@example.com", PASSWORD)
        .await
        .unwrap();

    // Every failure emitted auth.login.failed.
    let mut reasons = Vec::new();
    while reasons.len() < 7 {
        tokio::time::timeout(
            Duration::from_secs(20),
            events.process_next(|delivery| {
                let body: serde_json::Value = serde_json::from_slice(&delivery.data).unwrap();
                reasons.push(
                    body["data"]["reason"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                );
                async { Outcome::Done }
            }),
        )
        .await
        .expect("a login.failed event")
        .unwrap();
    }
    assert_eq!(
        reasons
            .iter()
            .filter(|reason| reason.ends_with("WRONG_PASSWORD"))
            .count(),
        6
    );
    assert_eq!(
        reasons
            .iter()
            .filter(|reason| reason.ends_with("ACCOUNT_LOCKED"))
            .count(),
        1
    );
}

#[tokio::test]
async fn every_attempt_is_logged_with_its_address_and_agent() {
    let app = TestApp::spawn().await;
    let tenant = tenant_of(&app.sign_up("acme", "ada@example.com").await);
    let _ = app.login(tenant, "nobody@example.com", PASSWORD).await;
    let _ = app
        .login(tenant, "ada@example.com", "wrong-password-xyz")
        .await;
    app.login(tenant, "ada@example.com", PASSWORD)
        .await
        .unwrap();

    let mut connection = app.infra.admin_connection().await;
    let rows = sqlx::query("SELECT email, succeeded, reason, ip_address, tenant_id FROM auth.login_attempts ORDER BY id")
        .fetch_all(&mut connection)
        .await
        .unwrap();
    let summary: Vec<(String, bool, String)> = rows
        .iter()
        .map(|row| (row.get("email"), row.get("succeeded"), row.get("reason")))
        .collect();
    assert_eq!(
        summary,
        [
            (
                "nobody@example.com".to_owned(),
                false,
                "LOGIN_FAILURE_REASON_UNKNOWN_EMAIL".to_owned()
            ),
            (
                "ada@example.com".to_owned(),
                false,
                "LOGIN_FAILURE_REASON_WRONG_PASSWORD".to_owned()
            ),
            ("ada@example.com".to_owned(), true, "logged in".to_owned()),
        ]
    );
    for row in &rows {
        assert_eq!(row.get::<String, _>("ip_address"), "203.0.113.7");
        assert_eq!(row.get::<uuid::Uuid, _>("tenant_id"), tenant.as_uuid());
    }
}

#[tokio::test]
async fn an_address_that_fails_too_often_is_refused_while_others_are_not() {
    let mut options = Options::default();
    options.security.ip_failure_limit = 4;
    options.security.lockout_threshold = 100;
    let app = TestApp::spawn_with(options).await;
    let tenant = tenant_of(&app.sign_up("acme", "ada@example.com").await);
    let attacker = app.auth_from(Some(tenant), "198.51.100.66");
    for attempt in 0..4 {
        let refused = attacker
            .clone()
            .login(wire::LoginRequest {
                email: format!("guess{attempt}@example.com"),
                password: "123456789012".into(),
            })
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::Unauthenticated);
    }
    let throttled = attacker
        .clone()
        .login(wire::LoginRequest {
            email: "ada@example.com".into(),
            password: PASSWORD.into(),
        })
        .await
        .unwrap_err();
    assert_eq!(throttled.code(), Code::ResourceExhausted);
    assert_eq!(error_reason(&throttled), "TOO_MANY_ATTEMPTS");
    // Ada, from her own address, is not affected.
    app.login(tenant, "ada@example.com", PASSWORD)
        .await
        .unwrap();
}

#[tokio::test]
async fn signing_up_with_an_accounts_email_guesses_its_password_no_faster_than_logging_in() {
    let mut options = Options::default();
    options.security.ip_failure_limit = 3;
    let app = TestApp::spawn_with(options).await;
    let tenant = tenant_of(&app.sign_up("acme", "ada@example.com").await);
    let attacker = app.auth_from(None, "198.51.100.67");
    let sign_up = |slug: &str, password: &str| wire::SignUpRequest {
        tenant_slug: slug.into(),
        tenant_display_name: "Guess Inc.".into(),
        email: "ada@example.com".into(),
        password: password.into(),
        display_name: "Mallory".into(),
    };
    for attempt in 0..3 {
        let refused = attacker
            .clone()
            .sign_up(sign_up(&format!("guess-{attempt}"), "wrong-Password-42"))
            .await
            .unwrap_err();
        assert_eq!(error_reason(&refused), "ACCOUNT_EXISTS");
    }
    // Even the right password is refused from that address now, and so are its logins.
    let throttled = attacker
        .clone()
        .sign_up(sign_up("guess-right", PASSWORD))
        .await
        .unwrap_err();
    assert_eq!(throttled.code(), Code::ResourceExhausted);
    assert_eq!(error_reason(&throttled), "TOO_MANY_ATTEMPTS");
    let throttled = app
        .auth_from(Some(tenant), "198.51.100.67")
        .login(wire::LoginRequest {
            email: "ada@example.com".into(),
            password: PASSWORD.into(),
        })
        .await
        .unwrap_err();
    assert_eq!(error_reason(&throttled), "TOO_MANY_ATTEMPTS");
    // From another address, Ada signs up a second tenant with her password.
    app.auth_from(None, "203.0.113.50")
        .sign_up(sign_up("ada-two", PASSWORD))
        .await
        .unwrap();
}

/// All a client can see of a refused login: code, message, reason, metadata and the encoded
/// details.
fn answer(
    status: &tonic::Status,
) -> (
    Code,
    String,
    String,
    std::collections::HashMap<String, String>,
    Vec<u8>,
) {
    (
        status.code(),
        status.message().to_owned(),
        error_reason(status),
        error_metadata(status),
        status.details().to_vec(),
    )
}

#[tokio::test]
async fn another_tenant_can_neither_lock_a_member_out_nor_tell_their_email_from_an_unknown_one() {
    // Arrange: Ada is a member of acme and of beta; Mallory owns her own tenant.
    let app = TestApp::spawn().await;
    let acme = tenant_of(&app.sign_up("acme", "ada@example.com").await);
    let beta = tenant_of(&app.sign_up("beta", "ada@example.com").await);
    let mallory = tenant_of(&app.sign_up("mallory", "mallory@example.com").await);
    let refused = |tenant: Option<TenantId>, email: &str, password: &str| {
        let request = wire::LoginRequest {
            email: email.into(),
            password: password.into(),
        };
        let mut attacker = app.auth_from(tenant, "198.51.100.66");
        async move { attacker.login(request).await.unwrap_err() }
    };

    // Act: far more wrong passwords with Ada's email than the threshold (3 in tests), routed
    // to Mallory's tenant, and to no tenant (platform administration, which Ada is not part
    // of either); each answered exactly as an unknown email is.
    for tenant in [Some(mallory), None] {
        for attempt in 0..6 {
            let with_ada = refused(tenant, "ada@example.com", "wrong-password-xyz").await;
            let with_nobody = refused(tenant, "nobody@example.com", "wrong-password-xyz").await;
            assert_eq!(
                answer(&with_ada),
                answer(&with_nobody),
                "{tenant:?}, attempt {attempt}"
            );
            assert_eq!(with_ada.code(), Code::Unauthenticated);
            assert_eq!(error_reason(&with_ada), "INVALID_CREDENTIALS");
        }
        // Even her right password tells nothing there.
        assert_eq!(
            answer(&refused(tenant, "ada@example.com", PASSWORD).await),
            answer(&refused(tenant, "nobody@example.com", PASSWORD).await)
        );
    }

    // Assert: Ada still logs in to her own tenants.
    app.login(acme, "ada@example.com", PASSWORD).await.unwrap();
    app.login(beta, "ada@example.com", PASSWORD).await.unwrap();

    // Her own tenant still locks after its own threshold, and that lock is acme's alone.
    assert_eq!(fail(&app, acme, 2).await.code(), Code::Unauthenticated);
    locked_for(&fail(&app, acme, 1).await);
    locked_for(
        &app.login(acme, "ada@example.com", PASSWORD)
            .await
            .unwrap_err(),
    );
    app.login(beta, "ada@example.com", PASSWORD).await.unwrap();
}
