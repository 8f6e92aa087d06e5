//! TLS to the infrastructure with a private CA made here: `rediss://` to a real redis-server
//! with TLS on (started here), `amqps://` to the real RabbitMQ and `sslmode=verify-full` to
//! the real Postgres through TLS listeners in front of them. Trusted through REDIS_CA_FILE,
//! AMQP_CA_FILE and `sslrootcert`; refused without them (the roots do not know the CA) and
//! with another CA.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use platform::config::{AmqpConfig, RedisConfig};
use platform::redis::Redis;
use platform::testing::TestInfra;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use secrecy::ExposeSecret;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

/// A certificate authority: its certificate as PEM, and what signs with it.
struct Authority {
    pem: String,
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Authority {
    fn new(name: &str) -> Authority {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        Authority {
            pem: issuer.pem(),
            issuer,
        }
    }

    /// A certificate for 127.0.0.1 and localhost signed by this CA, and its key, as PEM.
    fn server_certificate(&self) -> (String, String) {
        let params =
            CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
        let key = KeyPair::generate().unwrap();
        let certificate = params.signed_by(&key, &self.issuer).unwrap();
        (certificate.pem(), key.serialize_pem())
    }
}

/// A redis-server answering TLS only, on a port of its own, until dropped.
struct TlsRedis {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl TlsRedis {
    fn start(authority: &Authority) -> TlsRedis {
        let dir = std::env::temp_dir().join(format!("formflow-redis-tls-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        let (certificate, key) = authority.server_certificate();
        let write = |name: &str, content: &str| {
            let path = dir.join(name);
            std::fs::write(&path, content).unwrap();
            path
        };
        let (cert_file, key_file, ca_file) = (
            write("server.pem", &certificate),
            write("server.key", &key),
            write("ca.pem", &authority.pem),
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("redis-server")
            .args([
                "--port",
                "0",
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .args(["--tls-port", &port.to_string(), "--tls-auth-clients", "no"])
            .arg("--tls-cert-file")
            .arg(&cert_file)
            .arg("--tls-key-file")
            .arg(&key_file)
            .arg("--tls-ca-cert-file")
            .arg(&ca_file)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting redis-server (scripts/setup.sh installs it)");
        TlsRedis { child, port, dir }
    }

    fn config(&self, ca_file: Option<&Path>) -> RedisConfig {
        RedisConfig {
            redis_ca_file: ca_file.map(Path::to_path_buf),
            ..RedisConfig::for_url(format!("rediss://127.0.0.1:{}", self.port), "tls-test:")
        }
    }
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test]
async fn rediss_is_trusted_through_the_ca_file_only() {
    let authority = Authority::new("FormFlow test CA");
    let server = TlsRedis::start(&authority);
    let trusted = Redis::connect(&server.config(Some(&server.dir.join("ca.pem")))).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !trusted.ping().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "redis-server over TLS never answered"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut connection = trusted.connection();
    let _: () = redis::cmd("SET")
        .arg(trusted.key("k"))
        .arg("v")
        .query_async(&mut connection)
        .await
        .unwrap();
    let value: String = redis::cmd("GET")
        .arg(trusted.key("k"))
        .query_async(&mut connection)
        .await
        .unwrap();
    assert_eq!(value, "v");

    // The system's roots do not know the test CA; another CA does not sign the server.
    let system_roots = Redis::connect(&server.config(None)).unwrap();
    assert!(!system_roots.ping().await, "an unknown CA was trusted");
    let other = server.dir.join("other-ca.pem");
    std::fs::write(&other, Authority::new("Another CA").pem).unwrap();
    let wrong = Redis::connect(&server.config(Some(&other))).unwrap();
    assert!(
        !wrong.ping().await,
        "a certificate of another CA was trusted"
    );
}

/// Postgres's SSLRequest: a client asks for TLS before its startup message.
const SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];

/// A TLS listener on loopback, with a certificate of `authority`, that hands each connection,
/// decrypted, to `upstream`; answers its port. With `postgres`, it first answers Postgres's
/// SSLRequest as a server with TLS on does (the upstream then sees a plain session).
async fn tls_in_front_of(authority: &Authority, upstream: SocketAddr, postgres: bool) -> u16 {
    let (certificate, key) = authority.server_certificate();
    let chain = CertificateDer::pem_slice_iter(certificate.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap();
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let mut stream = stream;
                if postgres {
                    let mut request = [0; 8];
                    if stream.read_exact(&mut request).await.is_err()
                        || request != SSL_REQUEST
                        || stream.write_all(b"S").await.is_err()
                    {
                        return;
                    }
                }
                let Ok(mut tls) = acceptor.accept(stream).await else {
                    return;
                };
                let Ok(mut plain) = TcpStream::connect(upstream).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
    port
}

#[tokio::test]
async fn amqps_is_trusted_through_the_ca_file_only() {
    let infra = TestInfra::new().await;
    let authority = Authority::new("FormFlow test CA");
    let plain = url::Url::parse(infra.amqp.url().unwrap().expose_secret()).unwrap();
    let upstream = SocketAddr::new(
        plain.host_str().unwrap().parse().unwrap(),
        plain.port().unwrap_or(5672),
    );
    let port = tls_in_front_of(&authority, upstream, false).await;
    let mut secured = plain.clone();
    secured.set_scheme("amqps").unwrap();
    secured.set_port(Some(port)).unwrap();
    let dir = std::env::temp_dir().join(format!("formflow-amqp-tls-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    let (ca_file, other_file) = (dir.join("ca.pem"), dir.join("other-ca.pem"));
    std::fs::write(&ca_file, &authority.pem).unwrap();
    std::fs::write(&other_file, Authority::new("Another CA").pem).unwrap();
    let config = |ca_file: Option<&Path>| AmqpConfig {
        amqp_ca_file: ca_file.map(Path::to_path_buf),
        ..AmqpConfig::for_url(secured.as_str(), infra.amqp.amqp_prefix.clone())
    };

    let connection = platform::amqp::connect(&config(Some(&ca_file)), "tls-test")
        .await
        .expect("amqps through the private CA");
    let channel = connection.create_channel().await.unwrap();
    channel
        .queue_declare(
            format!("{}.tls-test", infra.amqp.amqp_prefix).into(),
            lapin::options::QueueDeclareOptions {
                auto_delete: true,
                ..Default::default()
            },
            Default::default(),
        )
        .await
        .expect("the broker answers through TLS");
    connection.close(200, "done".into()).await.unwrap();

    for refused in [None, Some(other_file.as_path())] {
        let error = platform::amqp::connect(&config(refused), "tls-test")
            .await
            .expect_err("a certificate of an unknown CA was trusted");
        assert!(format!("{error:#}").contains("certificate"), "{error:#}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn postgres_verify_full_is_trusted_through_sslrootcert_only() {
    let infra = TestInfra::new().await;
    let authority = Authority::new("FormFlow test CA");
    let plain = url::Url::parse(infra.db.url().unwrap().expose_secret()).unwrap();
    let upstream = SocketAddr::new(
        plain.host_str().unwrap().parse().unwrap(),
        plain.port().unwrap_or(5432),
    );
    let port = tls_in_front_of(&authority, upstream, true).await;
    let dir = std::env::temp_dir().join(format!("formflow-pg-tls-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    let (ca_file, other_file) = (dir.join("ca.pem"), dir.join("other-ca.pem"));
    std::fs::write(&ca_file, &authority.pem).unwrap();
    std::fs::write(&other_file, Authority::new("Another CA").pem).unwrap();
    // As docs/deploy.md tells operators to write it: verify-full, with the CA's file.
    let url = |root: Option<&Path>| {
        let mut url = plain.clone();
        url.set_port(Some(port)).unwrap();
        url.query_pairs_mut().append_pair("sslmode", "verify-full");
        if let Some(root) = root {
            url.query_pairs_mut()
                .append_pair("sslrootcert", root.to_str().unwrap());
        }
        url
    };
    use sqlx::Connection as _;
    let mut connection = sqlx::PgConnection::connect(url(Some(&ca_file)).as_str())
        .await
        .expect("verify-full through the private CA");
    let one: i32 = sqlx::query_scalar("SELECT 1")
        .fetch_one(&mut connection)
        .await
        .unwrap();
    assert_eq!(one, 1);
    connection.close().await.unwrap();
    for refused in [None, Some(other_file.as_path())] {
        let error = sqlx::PgConnection::connect(url(refused).as_str())
            .await
            .expect_err("a certificate of an unknown CA was trusted");
        assert!(error.to_string().contains("certificate"), "{error}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
