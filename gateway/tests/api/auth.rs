//! Authentication: every way a token can be wrong, real sessions and API keys from svc-auth,
//! public RPCs, and signing key rotation.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use platform::testing::{TestKeys, wait_until};
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, Tenant, TestSuite};

fn encode(part: &Value) -> String {
    URL_SAFE_NO_PAD.encode(part.to_string())
}

#[tokio::test]
async fn every_bad_token_is_refused_with_401() {
    let suite = TestSuite::spawn().await;
    let acme = suite.create_tenant("acme").await;
    let keys = &suite.keys;
    let member = |claims: &mut platform::auth::Claims| {
        claims.tid = Some(acme.id.to_string());
        claims.role = Some("member".into());
    };
    let valid = {
        let mut claims = keys.claims(&uuid::Uuid::now_v7().to_string());
        member(&mut claims);
        claims
    };
    let good = keys.sign(&valid);
    let [header, payload, signature]: [&str; 3] =
        good.split('.').collect::<Vec<_>>().try_into().unwrap();

    let expired = {
        let mut claims = valid.clone();
        claims.iat -= 3600;
        claims.exp = chrono::Utc::now().timestamp() - 120;
        keys.sign(&claims)
    };
    let other_key = TestKeys::new().sign(&valid);
    let wrong_issuer = {
        let mut claims = valid.clone();
        claims.iss = "someone-else".into();
        keys.sign(&claims)
    };
    let wrong_audience = {
        let mut claims = valid.clone();
        claims.aud = "another-api".into();
        keys.sign(&claims)
    };
    let tampered = {
        let mut claims = serde_json::to_value(&valid).unwrap();
        claims["role"] = json!("owner");
        format!("{header}.{}.{signature}", encode(&claims))
    };
    let claims_json = serde_json::to_value(&valid).unwrap();
    let alg_none = format!(
        "{}.{}.",
        encode(&json!({"alg": "none", "typ": "JWT"})),
        encode(&claims_json)
    );
    // HS256 keyed with the public key: the classic algorithm confusion.
    let jwks: Value =
        serde_json::from_slice(&std::fs::read(keys.auth_config().auth_jwks_file.unwrap()).unwrap())
            .unwrap();
    let public_key = jwks["keys"][0]["x"].as_str().unwrap().to_owned();
    let kid = jwks["keys"][0]["kid"].clone();
    let hmac_confusion = {
        let signing_input = format!(
            "{}.{}",
            encode(&json!({"alg": "HS256", "typ": "JWT", "kid": kid})),
            encode(&claims_json)
        );
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, public_key.as_bytes());
        let tag = ring::hmac::sign(&key, signing_input.as_bytes());
        format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
    };
    let unknown_kid = {
        let mut header: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap();
        header["kid"] = json!("no-such-key");
        format!("{}.{payload}.{signature}", encode(&header))
    };

    let whoami = |token: &str| suite.gateway.get("/v1/whoami").tenant(&acme).bearer(token);
    assert_eq!(whoami(&good).send().await.status, 200);
    for (what, token) in [
        ("expired", expired.as_str()),
        ("signed by another key", &other_key),
        ("wrong issuer", &wrong_issuer),
        ("wrong audience", &wrong_audience),
        ("tampered payload", &tampered),
        ("alg none", &alg_none),
        ("HS256 with the public key", &hmac_confusion),
        ("unknown kid", &unknown_kid),
        ("garbage", "not.a.token"),
        ("one part", "abc"),
    ] {
        let reply = whoami(token).send().await;
        assert_eq!(
            (reply.status, reply.error_code()),
            (401, "UNAUTHENTICATED".to_owned()),
            "{what}: {}",
            reply.text()
        );
        assert!(!reply.text().contains(token), "{what}: the token is echoed");
    }

    // Malformed or missing credentials.
    for authorization in ["Basic dXNlcjpwYXNz", "Bearer", "Bearer    ", good.as_str()] {
        let reply = suite
            .gateway
            .get("/v1/whoami")
            .tenant(&acme)
            .header("authorization", authorization)
            .send()
            .await;
        assert_eq!(reply.status, 401, "{authorization}");
    }
    let reply = suite.gateway.get("/v1/whoami").tenant(&acme).send().await;
    assert_eq!(
        (reply.status, reply.error_code()),
        (401, "UNAUTHENTICATED".to_owned())
    );
    // A public RPC needs none, but refuses bad ones.
    assert_eq!(
        suite
            .gateway
            .get("/v1/public/whoami")
            .tenant(&acme)
            .send()
            .await
            .status,
        200
    );
    assert_eq!(
        suite
            .gateway
            .get("/v1/public/whoami")
            .tenant(&acme)
            .bearer(&expired)
            .send()
            .await
            .status,
        401
    );
}

#[tokio::test]
async fn tokens_not_valid_yet_or_issued_in_the_future_are_refused_with_401() {
    let suite = TestSuite::spawn().await;
    let acme = suite.create_tenant("acme").await;
    let now = chrono::Utc::now().timestamp();
    let with = |member: &str, at: i64| {
        let mut claims = suite.keys.claims(&uuid::Uuid::now_v7().to_string());
        claims.tid = Some(acme.id.to_string());
        claims.role = Some("member".into());
        let mut claims = serde_json::to_value(claims).unwrap();
        claims[member] = json!(at);
        suite.keys.sign(&claims)
    };
    let (suite, acme) = (&suite, &acme);
    let whoami = |token: String| async move {
        suite
            .gateway
            .get("/v1/whoami")
            .tenant(acme)
            .bearer(&token)
            .send()
            .await
    };
    for member in ["nbf", "iat"] {
        let reply = whoami(with(member, now + 3600)).await;
        assert_eq!(
            (reply.status, reply.error_code()),
            (401, "UNAUTHENTICATED".to_owned()),
            "{member} an hour ahead: {}",
            reply.text()
        );
        // A few seconds of clock skew are tolerated.
        let reply = whoami(with(member, now + 10)).await;
        assert_eq!(
            reply.status,
            200,
            "{member} within the leeway: {}",
            reply.text()
        );
    }
}

/// A new session of the owner of `tenant`, through the gateway.
pub(crate) async fn log_in(suite: &TestSuite, tenant: &Tenant) -> Value {
    let reply = suite
        .gateway
        .post("/api/v1/auth:login")
        .tenant(tenant)
        .json(&json!({"email": format!("owner@{}.example", tenant.slug), "password": PASSWORD}))
        .send()
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.json()["tokens"].clone()
}

/// Signs up a tenant through the gateway; its owner's tokens.
pub(crate) async fn sign_up(suite: &TestSuite, slug: &str) -> (Tenant, Value) {
    let reply = suite
        .gateway
        .post("/api/v1/auth:signUp")
        .json(&json!({
            "tenant_slug": slug,
            "tenant_display_name": "Acme",
            "email": format!("owner@{slug}.example"),
            "password": PASSWORD,
            "display_name": "Owner",
        }))
        .send()
        .await;
    assert_eq!(reply.status, 200, "signing up: {}", reply.text());
    let body = reply.json();
    let tenant = Tenant {
        id: platform::context::TenantId::parse(body["tenant"]["id"].as_str().unwrap()).unwrap(),
        slug: slug.to_owned(),
    };
    (tenant, body["tokens"].clone())
}

#[tokio::test]
async fn sessions_from_svc_auth_rotate_detect_reuse_and_end_at_logout() {
    let suite = TestSuite::spawn().await;
    let (acme, tokens) = sign_up(&suite, "acme").await;

    // Log in through the gateway, by the tenant's subdomain.
    let reply = suite
        .gateway
        .post("/api/v1/auth:login")
        .header("host", &acme.host())
        .json(&json!({"email": "owner@acme.example", "password": PASSWORD}))
        .send()
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let access = reply.json()["tokens"]["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let me = |token: &str| suite.gateway.get("/api/v1/users/me").bearer(token).send();
    let reply = me(&access).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.json()["member"]["role"], "ROLE_OWNER");

    // Refresh rotates; a refresh token used twice ends the whole session at once.
    let login_tokens = log_in(&suite, &acme).await;
    let refresh = |token: &str| {
        suite
            .gateway
            .post("/api/v1/auth:refresh")
            .tenant(&acme)
            .json(&json!({"refresh_token": token}))
            .send()
    };
    let reply = refresh(login_tokens["refreshToken"].as_str().unwrap()).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let rotated = reply.json();
    assert_ne!(rotated["refreshToken"], login_tokens["refreshToken"]);
    let rotated_access = rotated["accessToken"].as_str().unwrap().to_owned();
    assert_eq!(me(&rotated_access).await.status, 200);
    let reply = refresh(login_tokens["refreshToken"].as_str().unwrap()).await;
    assert_eq!(reply.status, 401, "reuse is refused: {}", reply.text());
    assert_eq!(
        me(&rotated_access).await.status,
        401,
        "the session ended with the reuse"
    );
    let reply = refresh(rotated["refreshToken"].as_str().unwrap()).await;
    assert_eq!(reply.status, 401, "the whole family is revoked");

    // Logging out ends this session at once at the gateway, not the other one.
    let reply = suite
        .gateway
        .post("/api/v1/auth:logout")
        .bearer(&access)
        .json(&json!({}))
        .send()
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let reply = me(&access).await;
    assert_eq!(
        (reply.status, reply.error_code()),
        (401, "UNAUTHENTICATED".to_owned())
    );
    assert_eq!(
        me(tokens["accessToken"].as_str().unwrap()).await.status,
        200
    );

    // Wrong passwords are refused, with the shared error shape.
    let reply = suite
        .gateway
        .post("/api/v1/auth:login")
        .tenant(&acme)
        .json(&json!({"email": "owner@acme.example", "password": "wrong-password-123"}))
        .send()
        .await;
    assert_eq!(reply.status, 401);
    assert!(!reply.text().contains("wrong-password-123"));
}

#[tokio::test]
async fn new_signing_keys_are_fetched_when_a_token_names_one() {
    let suite = TestSuite::spawn().await;
    let (acme, _) = sign_up(&suite, "acme").await;
    let reply = suite
        .gateway
        .post("/api/v1/signingKeys:rotate")
        .bearer(&suite.keys.platform_admin_token())
        .json(&json!({}))
        .send()
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    // Tokens from now on carry the new key's kid, which the gateway has not seen yet.
    let reply = suite
        .gateway
        .post("/api/v1/auth:login")
        .tenant(&acme)
        .json(&json!({"email": "owner@acme.example", "password": PASSWORD}))
        .send()
        .await;
    let access = reply.json()["tokens"]["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let reply = suite.gateway.get("/v1/whoami").bearer(&access).send().await;
    assert_eq!(reply.status, 200, "{}", reply.text());
}

#[tokio::test]
async fn api_keys_authenticate_for_their_tenant_until_revoked() {
    let suite =
        TestSuite::spawn_with(|config| config.edge.api_key_cache_ttl = Duration::from_secs(1))
            .await;
    let (acme, tokens) = sign_up(&suite, "acme").await;
    let globex = suite.create_tenant("globex").await;
    let owner = tokens["accessToken"].as_str().unwrap().to_owned();
    let reply = suite
        .gateway
        .post("/api/v1/apiKeys")
        .bearer(&owner)
        .json(&json!({"display_name": "ci", "role": "ROLE_MEMBER"}))
        .send()
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let created = reply.json();
    let secret = created["secret"].as_str().unwrap().to_owned();
    let name = created["apiKey"]["name"].as_str().unwrap().to_owned();

    // Either header; the service receives a token for the key, not the secret.
    for reply in [
        suite
            .gateway
            .get("/v1/whoami")
            .header("x-api-key", &secret)
            .send()
            .await,
        suite
            .gateway
            .get("/v1/whoami")
            .bearer(&secret)
            .tenant(&acme)
            .send()
            .await,
    ] {
        assert_eq!(reply.status, 200, "{}", reply.text());
        let metadata = reply.json()["metadata"].clone();
        assert_eq!(metadata["x-tenant-id"], acme.id.to_string());
        let authorization = metadata["authorization"].as_str().unwrap();
        assert!(
            authorization.starts_with("Bearer ey") && !authorization.contains(&secret),
            "{authorization}"
        );
    }
    // Not for another tenant, and not with a wrong or unknown secret.
    let reply = suite
        .gateway
        .get("/v1/whoami")
        .header("x-api-key", &secret)
        .tenant(&globex)
        .send()
        .await;
    assert_eq!(reply.status, 401, "{}", reply.text());
    let mut wrong = secret.clone();
    wrong.pop();
    wrong.push(if secret.ends_with('A') { 'B' } else { 'A' });
    for bad in [wrong.as_str(), "ffk_unknown", "not-a-key"] {
        let reply = suite
            .gateway
            .get("/v1/whoami")
            .header("x-api-key", bad)
            .tenant(&acme)
            .send()
            .await;
        assert_eq!(
            (reply.status, reply.error_code()),
            (401, "UNAUTHENTICATED".to_owned()),
            "{bad}"
        );
    }

    let reply = suite
        .gateway
        .post(&format!("/api/v1/{name}:revoke"))
        .bearer(&owner)
        .json(&json!({}))
        .send()
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    wait_until(
        Duration::from_secs(5),
        "the revoked key is refused",
        || async {
            suite
                .gateway
                .get("/v1/whoami")
                .header("x-api-key", &secret)
                .send()
                .await
                .status
                == 401
        },
    )
    .await;
}
