//! Around credentials: answers carrying tokens or secrets are never stored, the key set is a
//! standard JWKS, and services learn the client's address from the gateway alone.

use serde_json::{Value, json};
use sqlx::Row;

use crate::auth::{log_in, sign_up};
use crate::helpers::{PASSWORD, Reply, TestSuite};

#[track_caller]
fn assert_not_stored(what: &str, reply: &Reply) {
    assert_eq!(
        (reply.header("cache-control"), reply.header("pragma")),
        (Some("no-store"), Some("no-cache")),
        "{what}: {}",
        reply.status
    );
}

#[tokio::test]
async fn answers_carrying_tokens_or_secrets_are_never_stored() {
    let suite = TestSuite::spawn().await;
    let signed_up = suite
        .gateway
        .post("/api/v1/auth:signUp")
        .json(&json!({
            "tenant_slug": "acme",
            "tenant_display_name": "Acme",
            "email": "owner@acme.example",
            "password": PASSWORD,
            "display_name": "Owner",
        }))
        .send()
        .await;
    assert_eq!(signed_up.status, 200, "{}", signed_up.text());
    assert_not_stored("sign-up", &signed_up);
    let (acme, tokens) = sign_up(&suite, "globex").await;
    let owner = tokens["accessToken"].as_str().unwrap().to_owned();

    let login = suite
        .gateway
        .post("/api/v1/auth:login")
        .tenant(&acme)
        .json(&json!({"email": "owner@globex.example", "password": PASSWORD}))
        .send()
        .await;
    assert_eq!(login.status, 200, "{}", login.text());
    assert_not_stored("login", &login);
    let refresh_token = log_in(&suite, &acme).await["refreshToken"].clone();
    let refreshed = suite
        .gateway
        .post("/api/v1/auth:refresh")
        .tenant(&acme)
        .json(&json!({"refresh_token": refresh_token}))
        .send()
        .await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.text());
    assert_not_stored("refresh", &refreshed);
    let api_key = suite
        .gateway
        .post("/api/v1/apiKeys")
        .bearer(&owner)
        .json(&json!({"display_name": "ci", "role": "ROLE_MEMBER"}))
        .send()
        .await;
    assert_eq!(api_key.status, 200, "{}", api_key.text());
    assert_not_stored("a new API key", &api_key);
    let enrolment = suite
        .gateway
        .post("/api/v1/users/me/totp:enrol")
        .bearer(&owner)
        .json(&json!({"password": PASSWORD}))
        .send()
        .await;
    assert_eq!(enrolment.status, 200, "{}", enrolment.text());
    assert_not_stored("a TOTP secret", &enrolment);
    let refused = suite
        .gateway
        .post("/api/v1/auth:login")
        .tenant(&acme)
        .json(&json!({"email": "owner@globex.example", "password": "wrong-password-123"}))
        .send()
        .await;
    assert_eq!(refused.status, 401);
    assert_not_stored("an error", &refused);

    // Raw bodies (downloads, hosted pages) keep their content type.
    let download = suite
        .gateway
        .get("/v1/downloads/x.csv")
        .tenant(&acme)
        .bearer(&suite.token(&acme))
        .send()
        .await;
    assert_eq!(download.status, 200, "{}", download.text());
    assert_eq!(download.header("content-type"), Some("text/csv"));
    assert_not_stored("a raw body", &download);
}

#[tokio::test]
async fn the_key_set_is_a_standard_jwks() {
    let suite = TestSuite::spawn().await;
    for path in ["/.well-known/jwks.json", "/api/v1/jwks"] {
        let reply = suite.gateway.get(path).send().await;
        assert_eq!(reply.status, 200, "{path}: {}", reply.text());
        let key_set = reply.json();
        let keys = key_set["keys"].as_array().unwrap();
        assert!(!keys.is_empty(), "{path}: {key_set}");
        for key in keys {
            // RFC 8037: an Ed25519 key is kty OKP, crv Ed25519 and x; it has no y.
            assert_eq!(key["kty"], "OKP", "{path}: {key}");
            assert_eq!(key["crv"], "Ed25519", "{path}: {key}");
            assert!(
                key["x"].as_str().is_some_and(|x| !x.is_empty()),
                "{path}: {key}"
            );
            assert_eq!(key.get("y"), None, "{path}: {key}");
            assert_eq!((&key["alg"], &key["use"]), (&json!("EdDSA"), &json!("sig")));
            assert!(key["kid"].as_str().is_some_and(|kid| !kid.is_empty()));
            assert!(
                key.as_object()
                    .unwrap()
                    .values()
                    .all(|member| member != &Value::from("")),
                "{path}: no empty members: {key}"
            );
        }
    }
}

#[tokio::test]
async fn services_record_the_client_address_the_gateway_saw() {
    let suite = TestSuite::spawn_with(|config| config.edge.trusted_proxies = 1).await;
    let (acme, _) = sign_up(&suite, "acme").await;
    // What a client claims itself is not what the gateway saw.
    let reply = suite
        .gateway
        .post("/api/v1/auth:login")
        .tenant(&acme)
        .header("x-forwarded-for", "203.0.113.9")
        .header("x-client-ip", "198.51.100.66")
        .header(
            "x-gateway-token",
            &suite.keys.service_token("gateway", None),
        )
        .json(&json!({"email": "owner@acme.example", "password": "wrong-password-123"}))
        .send()
        .await;
    assert_eq!(reply.status, 401, "{}", reply.text());

    let mut connection = suite.infra.admin_connection().await;
    let addresses: Vec<String> = sqlx::query("SELECT ip_address FROM auth.login_attempts")
        .fetch_all(&mut connection)
        .await
        .unwrap()
        .iter()
        .map(|row| row.get("ip_address"))
        .collect();
    assert_eq!(addresses, ["203.0.113.9"]);

    // Another team's upstream gets the client's address, never the gateway's token.
    let reply = suite
        .gateway
        .get("/v1/whoami")
        .tenant(&acme)
        .bearer(&suite.token(&acme))
        .header("x-forwarded-for", "203.0.113.9")
        .header("x-gateway-token", "forged")
        .send()
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let metadata = &reply.json()["metadata"];
    assert_eq!(metadata["x-client-ip"], "203.0.113.9", "{metadata}");
    assert_eq!(metadata.get("x-gateway-token"), None, "{metadata}");
}
