//! TOTP two-factor authentication: enrolment, the two-step login, replays, recovery codes.

use proto::formflow::auth::v1 as wire;
use tonic::Code;

use crate::helpers::{PASSWORD, TestApp, tenant_of, violated_fields};

/// The code of `secret` (base32) at `offset_steps` steps from now.
fn code(secret: &str, offset_steps: i64) -> String {
    let secret = totp_rs::Secret::try_from_base32(secret).unwrap();
    let totp = totp_rs::Builder::new().with_secret(secret).build().unwrap();
    let now = chrono::Utc::now().timestamp() + offset_steps * 30;
    totp.generate(u64::try_from(now).unwrap()).to_string()
}

/// Enrols Ada and answers her secret and recovery codes.
async fn enrol(app: &TestApp, token: &str) -> (String, Vec<String>) {
    let client = app.auth_with(token);
    let wrong = client
        .clone()
        .enrol_totp(wire::EnrolTotpRequest {
            password: "not-her-password".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&wrong), ["password"]);
    let enrolment = client
        .clone()
        .enrol_totp(wire::EnrolTotpRequest {
            password: PASSWORD.into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        enrolment
            .otpauth_uri
            .starts_with("otpauth://totp/FormFlow:ada%40example.com?")
    );
    let mismatch = client
        .clone()
        .confirm_totp(wire::ConfirmTotpRequest {
            code: "000000".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&mismatch), ["code"]);
    let confirmed = client
        .clone()
        .confirm_totp(wire::ConfirmTotpRequest {
            code: code(&enrolment.secret, 0),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(confirmed.recovery_codes.len(), 10);
    (enrolment.secret, confirmed.recovery_codes)
}

async fn challenge(app: &TestApp, tenant: platform::context::TenantId) -> String {
    let first_step = app
        .login(tenant, "ada@example.com", PASSWORD)
        .await
        .unwrap();
    assert!(first_step.requires_two_factor);
    assert!(first_step.tokens.is_none());
    first_step.challenge
}

async fn verify(
    app: &TestApp,
    tenant: platform::context::TenantId,
    challenge: &str,
    code: &str,
) -> Result<wire::LoginResponse, tonic::Status> {
    app.auth_public(Some(tenant))
        .verify_totp(wire::VerifyTotpRequest {
            challenge: challenge.into(),
            code: code.into(),
        })
        .await
        .map(tonic::Response::into_inner)
}

#[tokio::test]
async fn login_asks_for_a_code_once_enrolled_and_refuses_replays() {
    let app = TestApp::spawn().await;
    let signed_up = app.sign_up("acme", "ada@example.com").await;
    let tenant = tenant_of(&signed_up);
    let (secret, _) = enrol(&app, &signed_up.tokens.unwrap().access_token).await;

    // The confirmation used this step's code: the next step's code logs in.
    let next_code = code(&secret, 1);
    let first = challenge(&app, tenant).await;
    let logged_in = verify(&app, tenant, &first, &next_code).await.unwrap();
    assert!(logged_in.tokens.is_some());
    // The same challenge cannot be used twice, and the same code cannot be replayed.
    assert_eq!(
        verify(&app, tenant, &first, &next_code)
            .await
            .unwrap_err()
            .code(),
        Code::Unauthenticated
    );
    let second = challenge(&app, tenant).await;
    assert_eq!(
        verify(&app, tenant, &second, &next_code)
            .await
            .unwrap_err()
            .code(),
        Code::Unauthenticated
    );
    // A code from far away in time is refused; the challenge still works for a valid code.
    assert_eq!(
        verify(&app, tenant, &second, &code(&secret, 5))
            .await
            .unwrap_err()
            .code(),
        Code::Unauthenticated
    );
    let me = app
        .auth_with(&logged_in.tokens.unwrap().access_token)
        .get_me(wire::GetMeRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(me.user.unwrap().two_factor_enabled);
}

#[tokio::test]
async fn recovery_codes_work_once_and_wrong_codes_count_towards_the_lock() {
    let app = TestApp::spawn().await;
    let signed_up = app.sign_up("acme", "ada@example.com").await;
    let tenant = tenant_of(&signed_up);
    let token = signed_up.tokens.unwrap().access_token;
    let (secret, recovery_codes) = enrol(&app, &token).await;

    let first = challenge(&app, tenant).await;
    verify(&app, tenant, &first, &recovery_codes[0].to_uppercase())
        .await
        .unwrap();
    let second = challenge(&app, tenant).await;
    assert_eq!(
        verify(&app, tenant, &second, &recovery_codes[0])
            .await
            .unwrap_err()
            .code(),
        Code::Unauthenticated
    );

    // New codes replace the old ones.
    let regenerated = app
        .auth_with(&token)
        .regenerate_recovery_codes(wire::RegenerateRecoveryCodesRequest {
            code: code(&secret, 1),
        })
        .await
        .unwrap()
        .into_inner();
    assert_ne!(regenerated.recovery_codes, recovery_codes);
    let third = challenge(&app, tenant).await;
    assert_eq!(
        verify(&app, tenant, &third, &recovery_codes[1])
            .await
            .unwrap_err()
            .code(),
        Code::Unauthenticated
    );
    // That was the second wrong code; the third locks the account (threshold 3 in tests).
    let locked = verify(&app, tenant, &third, "999999").await.unwrap_err();
    assert_eq!(locked.code(), Code::PermissionDenied);
}

#[tokio::test]
async fn disabling_needs_the_password_and_a_code() {
    let app = TestApp::spawn().await;
    let signed_up = app.sign_up("acme", "ada@example.com").await;
    let tenant = tenant_of(&signed_up);
    let token = signed_up.tokens.unwrap().access_token;
    let (_, recovery_codes) = enrol(&app, &token).await;
    let client = app.auth_with(&token);
    let refused = client
        .clone()
        .disable_totp(wire::DisableTotpRequest {
            password: "wrong-password-xyz".into(),
            code: recovery_codes[0].clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&refused), ["password"]);
    client
        .clone()
        .disable_totp(wire::DisableTotpRequest {
            password: PASSWORD.into(),
            code: recovery_codes[0].clone(),
        })
        .await
        .unwrap();
    let login = app
        .login(tenant, "ada@example.com", PASSWORD)
        .await
        .unwrap();
    assert!(!login.requires_two_factor);
    assert!(login.tokens.is_some());
}
