//! The development signing key: an Ed25519 key created on first start in the state
//! directory (`.formflow/`, ignored by git), whose public half every service trusts. svc-auth
//! replaces it as the issuer of real tokens; the key stays useful for scripts and grpcurl.

use std::path::{Path, PathBuf};

use anyhow::Context;
use platform::auth::{Claims, JwtSigner};
use platform::context::{Role, TenantId, UserId};

use crate::TokenArgs;

const KEY_FILE: &str = "dev-signing-key.pk8";
const JWKS_FILE: &str = "jwks.json";
const DEMO_USER_FILE: &str = "demo-user-id";

/// The dev key and the files derived from it.
#[derive(Debug)]
pub struct DevKeys {
    signer: JwtSigner,
    state_dir: PathBuf,
}

impl DevKeys {
    /// Loads the key from `state_dir`, creating it (and the JWKS file) when missing.
    pub fn load_or_create(state_dir: &Path) -> anyhow::Result<DevKeys> {
        std::fs::create_dir_all(state_dir)
            .with_context(|| format!("creating {}", state_dir.display()))?;
        let key_path = state_dir.join(KEY_FILE);
        if !key_path.exists() {
            let signer = JwtSigner::generate()?;
            write_private(&key_path, signer.pkcs8())?;
        }
        let keys = Self::load(state_dir)?;
        std::fs::write(
            keys.jwks_path(),
            serde_json::to_vec_pretty(&keys.signer.jwks())?,
        )?;
        Ok(keys)
    }

    /// Loads an existing key.
    pub fn load(state_dir: &Path) -> anyhow::Result<DevKeys> {
        let key_path = state_dir.join(KEY_FILE);
        let pkcs8 = std::fs::read(&key_path).with_context(|| {
            format!(
                "reading {} (start the suite once with `formflow up`)",
                key_path.display()
            )
        })?;
        Ok(DevKeys {
            signer: JwtSigner::from_pkcs8(&pkcs8)?,
            state_dir: state_dir.to_owned(),
        })
    }

    /// The public key set services verify with.
    pub fn jwks_path(&self) -> PathBuf {
        self.state_dir.join(JWKS_FILE)
    }

    /// The demo user's id, stable across restarts.
    pub fn demo_user(&self) -> anyhow::Result<UserId> {
        let path = self.state_dir.join(DEMO_USER_FILE);
        if let Ok(text) = std::fs::read_to_string(&path) {
            return UserId::parse(text.trim()).context("the stored demo user id is not a UUID");
        }
        let user = UserId::generate();
        std::fs::write(&path, user.to_string())?;
        Ok(user)
    }

    /// A token as `formflow token` describes it.
    pub fn token(&self, args: &TokenArgs) -> anyhow::Result<String> {
        let now = chrono::Utc::now().timestamp();
        let lifetime = i64::try_from(args.ttl.as_secs()).unwrap_or(i64::MAX);
        let tenant = args
            .tenant
            .as_deref()
            .map(TenantId::parse)
            .transpose()
            .context("--tenant must be a tenant id")?;
        let mut claims = Claims {
            iss: "formflow".to_owned(),
            aud: "formflow".to_owned(),
            sub: String::new(),
            tid: tenant.map(|tenant| tenant.to_string()),
            role: None,
            sid: Some(uuid::Uuid::new_v4().to_string()),
            prole: None,
            typ: None,
            scope: None,
            jti: uuid::Uuid::new_v4().to_string(),
            iat: now,
            exp: now.saturating_add(lifetime),
        };
        let user = match &args.user {
            Some(user) => UserId::parse(user).context("--user must be a UUID")?,
            None => self.demo_user()?,
        };
        if args.platform_admin {
            claims.sub = user.to_string();
            claims.prole = Some("admin".to_owned());
        } else if let Some(service) = &args.service {
            claims.sub = service.clone();
            claims.typ = Some("service".to_owned());
            claims.sid = None;
        } else {
            anyhow::ensure!(
                tenant.is_some(),
                "give --platform-admin, --service or --tenant with --role"
            );
            let role = args
                .role
                .as_deref()
                .and_then(Role::parse)
                .context("--role must be owner, admin, member or viewer")?;
            claims.sub = user.to_string();
            claims.role = Some(role.as_str().to_owned());
        }
        self.signer.sign(&claims)
    }
}

/// The content of `name` in the state directory, created with `generate` (readable by the
/// owner only) on first use.
pub fn state_secret(
    state_dir: &Path,
    name: &str,
    generate: impl FnOnce() -> String,
) -> anyhow::Result<String> {
    let path = state_dir.join(name);
    match std::fs::read_to_string(&path) {
        Ok(content) => Ok(content.trim().to_owned()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let content = generate();
            write_private(&path, content.as_bytes())?;
            Ok(content)
        }
        Err(error) => Err(error).with_context(|| format!("reading {}", path.display())),
    }
}

/// The suite's service clients at svc-auth (its AUTH_SERVICE_CLIENTS, `id:secret,…`) kept in
/// the state directory's `service-clients`: one for each of `ids`, its secret created on first
/// start; an id missing from an older state directory is added.
pub fn service_clients(state_dir: &Path, ids: &[&str]) -> anyhow::Result<String> {
    let path = state_dir.join("service-clients");
    let mut clients = state_secret(state_dir, "service-clients", String::new)?;
    let mut added = false;
    for id in ids {
        if client_secret(&clients, id).is_none() {
            let client = format!("{id}:{}", random_password());
            clients = [clients.as_str(), client.as_str()]
                .into_iter()
                .filter(|part| !part.is_empty())
                .collect::<Vec<_>>()
                .join(",");
            added = true;
        }
    }
    if added {
        replace_private(&path, clients.as_bytes())?;
    }
    Ok(clients)
}

/// Writes every secret `formflow up` keeps in the state directory, for a suite whose services
/// run as processes of their own (docker-compose.yml's `dev-keys`): the dev signing key and its
/// JWKS, the encryption keys of svc-auth, svc-workflow and svc-notify, svc-auth's service
/// `clients`, and each client's secret alone in `client-secret-<id>` (its
/// `AUTH_CLIENT_SECRET_FILE`, rewritten from `service-clients` so that the two always agree).
/// Secrets that exist are kept. Returns the signing key's id.
pub fn write_all(state_dir: &Path, clients: &[&str]) -> anyhow::Result<String> {
    let keys = DevKeys::load_or_create(state_dir)?;
    for name in [
        "auth-encryption-keys",
        "workflow-encryption-keys",
        "notify-encryption-keys",
    ] {
        state_secret(state_dir, name, || {
            platform::crypto::Sealer::generate_key_entry("dev")
        })?;
    }
    let all = service_clients(state_dir, clients)?;
    for id in clients {
        let secret = client_secret(&all, id).context("a service client without its secret")?;
        replace_private(
            &state_dir.join(format!("client-secret-{id}")),
            secret.as_bytes(),
        )?;
    }
    Ok(keys.signer.key_id().to_owned())
}

/// The secret of client `id` in `clients` (`id:secret,…`).
pub fn client_secret<'a>(clients: &'a str, id: &str) -> Option<&'a str> {
    clients
        .split(',')
        .find_map(|client| client.trim().strip_prefix(id)?.strip_prefix(':'))
}

/// A random password of 24 letters and digits (about 140 bits).
pub fn random_password() -> String {
    use base64::Engine;
    let bytes: [u8; 24] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(bytes)
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(24)
        .collect()
}

#[cfg(unix)]
fn write_private(path: &Path, content: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(content)?;
    Ok(())
}

/// Replaces `path` with `content` (readable by the owner only) through a rename, so that a
/// reader sees the old content or the new, never a part.
fn replace_private(path: &Path, content: &[u8]) -> anyhow::Result<()> {
    let fresh = path.with_extension("new");
    match std::fs::remove_file(&fresh) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
            return Err(error).with_context(|| format!("removing {}", fresh.display()));
        }
        _ => {}
    }
    write_private(&fresh, content)?;
    std::fs::rename(&fresh, path).with_context(|| format!("replacing {}", path.display()))
}

#[cfg(not(unix))]
fn write_private(path: &Path, content: &[u8]) -> anyhow::Result<()> {
    std::fs::write(path, content).with_context(|| format!("creating {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_clients_are_created_once_and_completed_when_one_is_missing() {
        let dir = std::env::temp_dir().join(format!("formflow-clients-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("service-clients"), "gateway:older0123456789abcd\n").unwrap();
        let clients = service_clients(&dir, &["gateway", "svc-notify"]).unwrap();
        assert_eq!(
            client_secret(&clients, "gateway"),
            Some("older0123456789abcd")
        );
        let notify = client_secret(&clients, "svc-notify").unwrap().to_owned();
        assert_eq!(notify.len(), 24);
        // Kept as it is from then on.
        assert_eq!(
            service_clients(&dir, &["gateway", "svc-notify"]).unwrap(),
            clients
        );
        assert_eq!(
            std::fs::read_to_string(dir.join("service-clients")).unwrap(),
            clients
        );
        assert_eq!(client_secret(&clients, "svc"), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn every_secret_is_written_once_and_each_client_file_agrees_with_the_list() {
        let dir = std::env::temp_dir().join(format!("formflow-secrets-{}", uuid::Uuid::now_v7()));
        let ids = ["gateway", "svc-notify", "svc-workflow"];
        let kid = write_all(&dir, &ids).unwrap();
        let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap();
        let clients = read("service-clients");
        for id in ids {
            assert_eq!(
                Some(read(&format!("client-secret-{id}")).as_str()),
                client_secret(&clients, id)
            );
        }
        for name in [
            "auth-encryption-keys",
            "workflow-encryption-keys",
            "notify-encryption-keys",
        ] {
            assert!(read(name).starts_with("dev:"), "{name}");
        }
        let jwks: serde_json::Value = serde_json::from_str(&read("jwks.json")).unwrap();
        assert_eq!(jwks["keys"][0]["kid"], kid.as_str());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.join("client-secret-gateway"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // A second run keeps every secret.
        let before: Vec<String> = ["auth-encryption-keys", "service-clients", "jwks.json"]
            .iter()
            .map(|name| read(name))
            .collect();
        assert_eq!(write_all(&dir, &ids).unwrap(), kid);
        let after: Vec<String> = ["auth-encryption-keys", "service-clients", "jwks.json"]
            .iter()
            .map(|name| read(name))
            .collect();
        assert_eq!(before, after);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
