//! One-time tokens never rest in clear: the outbox keeps invitation and reset events with the
//! token sealed until published, then erased, while the published events still carry it.

use std::time::Duration;

use platform::testing::{EventObserver, wait_until};
use proto::formflow::auth::v1 as wire;

use crate::helpers::{TestApp, tenant_of};

#[tokio::test]
async fn invitation_and_reset_tokens_are_published_but_never_stored_in_clear() {
    let app = TestApp::spawn().await;
    let mut events = EventObserver::start(
        &app.infra.amqp,
        &[
            "auth.invitation.created.#",
            "auth.password_reset.requested.#",
        ],
    )
    .await;
    let owner = app.sign_up("acme", "ada@example.com").await;
    let tenant = tenant_of(&owner);
    app.auth_with(&owner.tokens.as_ref().unwrap().access_token)
        .create_invitation(wire::CreateInvitationRequest {
            invitation: Some(wire::Invitation {
                email: "linus@example.com".into(),
                role: wire::Role::Member as i32,
                ..Default::default()
            }),
        })
        .await
        .unwrap();
    app.auth_public(Some(tenant))
        .request_password_reset(wire::RequestPasswordResetRequest {
            email: "ada@example.com".into(),
        })
        .await
        .unwrap();

    let mut tokens: Vec<String> = events
        .receive(2, Duration::from_secs(20))
        .await
        .iter()
        .map(|event| event.body["data"]["token"].as_str().unwrap().to_owned())
        .collect();
    tokens.sort();
    assert!(
        tokens[0].starts_with("ffi_") && tokens[1].starts_with("ffp_"),
        "{tokens:?}"
    );

    let infra = &app.infra;
    wait_until(
        Duration::from_secs(10),
        "the outbox is published",
        || async {
            let pending: i64 =
                sqlx::query_scalar("SELECT count(*) FROM auth.outbox WHERE published_at IS NULL")
                    .fetch_one(&mut infra.admin_connection().await)
                    .await
                    .unwrap();
            pending == 0
        },
    )
    .await;
    let mut admin = app.infra.admin_connection().await;
    // Every row of the schema, as text: no table may hold a token in clear.
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables \
         WHERE table_schema = 'auth' AND table_type = 'BASE TABLE'",
    )
    .fetch_all(&mut admin)
    .await
    .unwrap();
    for table in tables {
        let rows: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT row_to_json(t)::text FROM auth.{table} t"
        )))
        .fetch_all(&mut admin)
        .await
        .unwrap();
        for row in rows {
            for token in &tokens {
                assert!(
                    !row.contains(token.as_str()),
                    "auth.{table} holds a token: {row}"
                );
            }
        }
    }
    let sealed: i64 =
        sqlx::query_scalar("SELECT count(*) FROM auth.outbox WHERE sealed IS NOT NULL")
            .fetch_one(&mut admin)
            .await
            .unwrap();
    assert_eq!(sealed, 0, "sealed envelopes are erased once published");
}
