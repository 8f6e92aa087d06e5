//! Login latency and token verification cost, measured against a real svc-auth (release
//! build, real Postgres/Redis/RabbitMQ, OWASP argon2id parameters). Run with
//! `scripts/bench.sh auth`; the figures are recorded in docs/benchmarks.md.

use std::time::{Duration, Instant};

use platform::auth::JwtVerifier;
use platform::testing::{TestInfra, TestKeys};
use proto::formflow::auth::v1 as wire;
use proto::formflow::auth::v1::auth_service_client::AuthServiceClient;
use secrecy::SecretString;
use svc_auth::config::SecurityConfig;
use svc_auth::crypto::Passwords;
use testkit::{Options, Services};
use tonic::Request;

const PASSWORD: &str = "violet-Kettle-drums-9-orbit";

/// OWASP's argon2id; no lockout, since the benchmark fails logins on purpose.
fn security() -> SecurityConfig {
    SecurityConfig {
        lockout_threshold: 1_000_000,
        ip_failure_limit: 1_000_000,
        ..testkit::owasp_security()
    }
}

fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * fraction).round() as usize;
    sorted[index]
}

fn report(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let total: Duration = samples.iter().sum();
    println!(
        "{name:<44} n={:<6} mean={:>10.3?} p50={:>10.3?} p99={:>10.3?}",
        samples.len(),
        total / samples.len() as u32,
        percentile(&samples, 0.5),
        percentile(&samples, 0.99),
    );
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    println!("svc-auth benchmark: argon2id m=19456 KiB, t=2, p=1 (OWASP), release build\n");

    // 1. The password hash alone.
    let passwords = Passwords::new(&security())?;
    let password = SecretString::from(PASSWORD.to_owned());
    let hash = passwords.hash(&password).await?;
    let mut samples = Vec::new();
    for _ in 0..30 {
        let started = Instant::now();
        assert!(passwords.verify(&password, Some(&hash)).await?);
        samples.push(started.elapsed());
    }
    report("argon2id verify (one password)", samples);

    // 2. Login over gRPC against a real svc-auth and svc-tenant.
    let infra = TestInfra::new().await;
    let keys = TestKeys::new();
    let services = Services::start(
        &infra,
        &keys,
        Options {
            security: security(),
            base_domain: None,
        },
    )
    .await;
    let auth_addr = services.auth_addr;

    let client = AuthServiceClient::connect(format!("http://{auth_addr}")).await?;
    let signed_up = services
        .sign_up("bench", "bench@example.com", PASSWORD)
        .await?;
    let tenant_id = signed_up.tenant.unwrap().id;
    let login = |email: &'static str, password: &'static str| {
        let mut client = client.clone();
        let tenant_id = tenant_id.clone();
        async move {
            let mut request = Request::new(wire::LoginRequest {
                email: email.into(),
                password: password.into(),
            });
            request
                .metadata_mut()
                .insert("x-tenant-id", tenant_id.parse().unwrap());
            let started = Instant::now();
            let result = client.login(request).await;
            (started.elapsed(), result)
        }
    };
    for (name, email, password, succeeds) in [
        (
            "Login, right password (sequential)",
            "bench@example.com",
            PASSWORD,
            true,
        ),
        (
            "Login, wrong password (sequential)",
            "bench@example.com",
            "wrong-password-xyz",
            false,
        ),
        (
            "Login, unknown email (sequential)",
            "nobody@example.com",
            PASSWORD,
            false,
        ),
    ] {
        let mut samples = Vec::new();
        for _ in 0..40 {
            let (elapsed, result) = login(email, password).await;
            assert_eq!(result.is_ok(), succeeds, "{name}");
            samples.push(elapsed);
        }
        report(name, samples);
    }
    let started = Instant::now();
    let concurrent =
        futures_util::future::join_all((0..64).map(|_| login("bench@example.com", PASSWORD))).await;
    let wall = started.elapsed();
    report(
        "Login, right password (64 concurrent)",
        concurrent.into_iter().map(|(elapsed, _)| elapsed).collect(),
    );
    println!(
        "{:<44} {:.1} logins/s",
        "  throughput at 64 concurrent",
        64.0 / wall.as_secs_f64()
    );

    // 3. Verifying an access token locally, as the gateway and every service do.
    let token = signed_up.tokens.unwrap().access_token;
    let verifier = JwtVerifier::from_config(
        &platform::config::AuthConfig {
            auth_url: Some(format!("http://{auth_addr}")),
            auth_jwks_file: None,
            auth_issuer: "formflow".into(),
            auth_audience: "formflow".into(),
        },
        None,
    )
    .await?;
    let rounds = 20_000;
    let started = Instant::now();
    for _ in 0..rounds {
        verifier.verify_with_known_keys(&token)?;
    }
    let per_verification = started.elapsed() / rounds;
    println!(
        "{:<44} n={rounds:<6} mean={per_verification:>10.3?}",
        "JWT verification (EdDSA, local keys)"
    );
    Ok(())
}
