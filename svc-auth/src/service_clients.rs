//! The suite services allowed to obtain service tokens, with their secrets.

use std::collections::HashMap;

use anyhow::Context;
use secrecy::{ExposeSecret, SecretString};

use crate::crypto::constant_time_eq;

/// Client ids and secrets from AUTH_SERVICE_CLIENTS.
pub struct ServiceClients {
    secrets: HashMap<String, SecretString>,
}

impl std::fmt::Debug for ServiceClients {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut ids: Vec<&str> = self.secrets.keys().map(String::as_str).collect();
        ids.sort_unstable();
        formatter
            .debug_struct("ServiceClients")
            .field("client_ids", &ids)
            .finish()
    }
}

impl ServiceClients {
    /// Parses `client_id:secret,…`. Secrets must be at least 16 characters.
    pub fn parse(list: &SecretString) -> anyhow::Result<Self> {
        let mut secrets = HashMap::new();
        for entry in list
            .expose_secret()
            .split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
        {
            let (client_id, secret) = entry
                .split_once(':')
                .context("AUTH_SERVICE_CLIENTS entries are `client_id:secret`")?;
            anyhow::ensure!(
                !client_id.is_empty() && client_id.len() <= 64,
                "AUTH_SERVICE_CLIENTS client ids are 1 to 64 characters"
            );
            anyhow::ensure!(
                secret.len() >= 16,
                "the AUTH_SERVICE_CLIENTS secret of {client_id} is shorter than 16 characters"
            );
            anyhow::ensure!(
                secrets
                    .insert(client_id.to_owned(), SecretString::from(secret.to_owned()))
                    .is_none(),
                "AUTH_SERVICE_CLIENTS lists {client_id} twice"
            );
        }
        Ok(Self { secrets })
    }

    /// Whether `secret` is `client_id`'s. Unknown clients take as long as known ones.
    pub fn verify(&self, client_id: &str, secret: &str) -> bool {
        match self.secrets.get(client_id) {
            Some(expected) => {
                constant_time_eq(expected.expose_secret().as_bytes(), secret.as_bytes())
            }
            None => {
                let _ = constant_time_eq(b"no such client, compared anyway", secret.as_bytes());
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clients(list: &str) -> anyhow::Result<ServiceClients> {
        ServiceClients::parse(&SecretString::from(list.to_owned()))
    }

    #[test]
    fn secrets_match_only_their_client() {
        let clients = clients("gateway:0123456789abcdef, svc-forms:fedcba9876543210").unwrap();
        assert!(clients.verify("gateway", "0123456789abcdef"));
        assert!(!clients.verify("gateway", "fedcba9876543210"));
        assert!(!clients.verify("svc-forms", "0123456789abcdef"));
        assert!(!clients.verify("nobody", "0123456789abcdef"));
        assert!(!clients.verify("gateway", ""));
    }

    #[test]
    fn malformed_lists_are_refused() {
        assert!(clients("").unwrap().secrets.is_empty());
        for bad in [
            "gateway",
            "gateway:short",
            ":0123456789abcdef",
            "a:0123456789abcdef,a:0123456789abcdef",
        ] {
            assert!(clients(bad).is_err(), "{bad:?}");
        }
    }
}
