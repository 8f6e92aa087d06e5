//! Outbound HTTP to addresses that users choose (a workflow's `action.http`, svc-notify's
//! webhooks): a client that refuses internal destinations, so a user cannot make the suite
//! reach what only it can reach. Refused: loopback, private (RFC 1918, unique local), link-local
//! (cloud metadata services such as 169.254.169.254 among them), shared (RFC 6598),
//! unspecified, broadcast, multicast and benchmarking addresses, IPv4 within IPv6 included —
//! checked on the address each name resolves to (not on the name), on every redirect, and on
//! addresses written in URLs; the deployment may allow networks of its own
//! (`WORKFLOW_HTTP_ALLOWED_NETWORKS`, `NOTIFY_WEBHOOK_ALLOWED_NETWORKS`).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Which destinations outbound requests may reach.
#[derive(Debug, Clone, Default)]
pub struct NetworkPolicy {
    allowed: Vec<IpNet>,
}

impl NetworkPolicy {
    /// Public addresses only, and the internal ones of `allowed`.
    pub fn new(allowed: Vec<IpNet>) -> Self {
        Self { allowed }
    }

    /// Whether a request may reach `ip`.
    pub fn permits(&self, ip: IpAddr) -> bool {
        !is_internal(ip) || self.in_allowed_network(ip)
    }

    /// Whether `ip` is in one of the networks the deployment allows (an internal network it
    /// trusts, where svc-notify's webhooks may go over plain http).
    pub fn in_allowed_network(&self, ip: IpAddr) -> bool {
        self.allowed.iter().any(|network| network.contains(&ip))
    }

    /// Refuses `url` unless it is http or https and, when its host is an address, a
    /// permitted one.
    pub fn check_url(&self, url: &reqwest::Url) -> Result<(), Refused> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Refused::Scheme(url.scheme().to_owned()));
        }
        let ip = match url.host() {
            Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip),
            Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip),
            Some(url::Host::Domain(_)) => return Ok(()),
            None => return Err(Refused::NoHost),
        };
        if self.permits(ip) {
            Ok(())
        } else {
            Err(Refused::Internal(ip))
        }
    }
}

/// Why a destination was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// An internal address, not allowed by the deployment.
    #[error("{0} is an internal address, which requests may not reach")]
    Internal(IpAddr),
    /// A name that resolves to internal addresses only.
    #[error("{0} resolves to an internal address, which requests may not reach")]
    InternalName(String),
    /// Neither http nor https.
    #[error("the URL's scheme is {0}; only http and https are allowed")]
    Scheme(String),
    /// No host.
    #[error("the URL has no host")]
    NoHost,
    /// Too many redirects.
    #[error("the request was redirected more than {MAX_REDIRECTS} times")]
    TooManyRedirects,
}

/// Most redirects a request follows.
pub const MAX_REDIRECTS: usize = 10;

/// Whether `ip` is one of the addresses refused unless allowed.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => {
            let [a, b, ..] = ip.octets();
            ip.is_loopback()
                || ip.is_private()
                || ip.is_link_local()
                || ip.is_unspecified()
                || ip.is_broadcast()
                || ip.is_multicast()
                || ip.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b)) // shared address space (RFC 6598)
                || (a == 198 && (b == 18 || b == 19)) // benchmarking (RFC 2544)
                || a >= 240 // reserved
        }
        IpAddr::V6(ip) => {
            if let Some(v4) = ip.to_ipv4_mapped() {
                return is_internal(IpAddr::V4(v4));
            }
            let first = ip.segments()[0];
            ip.is_loopback()
                || ip.is_unspecified()
                || ip.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local
                || (first & 0xffc0) == 0xfe80 // link-local
                || (first == 0x64 && ip.segments()[1] == 0xff9b) // NAT64 of any IPv4 address
                || first == 0x2002 // 6to4 of any IPv4 address
        }
    }
}

/// Resolves names with the system resolver, then refuses them unless every address they
/// resolve to is permitted (a name with one internal address among public ones could be
/// made to reach it).
#[derive(Debug)]
struct GuardedResolver {
    policy: Arc<NetworkPolicy>,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addresses: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if addresses
                .iter()
                .any(|address| !policy.permits(address.ip()))
            {
                return Err(Box::new(Refused::InternalName(host)) as _);
            }
            let addresses: Addrs = Box::new(addresses.into_iter());
            Ok(addresses)
        })
    }
}

/// A client whose requests reach only what `policy` permits, following redirects (each one
/// checked) when `follow_redirects`, with TLS over the webpki roots.
pub fn client(
    policy: Arc<NetworkPolicy>,
    follow_redirects: bool,
    user_agent: &str,
) -> anyhow::Result<reqwest::Client> {
    let redirects = if follow_redirects {
        let policy = policy.clone();
        reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= MAX_REDIRECTS {
                return attempt.error(Refused::TooManyRedirects);
            }
            match policy.check_url(attempt.url()) {
                Ok(()) => attempt.follow(),
                Err(refused) => attempt.error(refused),
            }
        })
    } else {
        reqwest::redirect::Policy::none()
    };
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    // ring, as lapin and sqlx use it here: aws-lc (with post-quantum key exchange) would
    // bring a C and assembly build into every service.
    #[allow(deprecated)]
    let provider = rustls::crypto::ring::default_provider();
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(provider))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(reqwest::Client::builder()
        .dns_resolver(Arc::new(GuardedResolver { policy }))
        .redirect(redirects)
        .tls_backend_preconfigured(tls)
        .no_proxy()
        .user_agent(user_agent)
        .connect_timeout(Duration::from_secs(10))
        .build()?)
}

/// The refusal behind a failed request, if that is why it failed.
pub fn refusal(error: &reqwest::Error) -> Option<&Refused> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = source {
        if let Some(refused) = current.downcast_ref::<Refused>() {
            return Some(refused);
        }
        source = current.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses_are_refused_unless_allowed() {
        let policy = NetworkPolicy::default();
        for internal in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "::ffff:127.0.0.1",
            "fd00:ec2::254",
            "fe80::1",
            "::",
        ] {
            assert!(!policy.permits(internal.parse().unwrap()), "{internal}");
        }
        for public in ["93.184.215.14", "1.1.1.1", "2606:4700::1111"] {
            assert!(policy.permits(public.parse().unwrap()), "{public}");
        }
        let allowing = NetworkPolicy::new(vec!["10.0.0.0/8".parse().unwrap()]);
        assert!(allowing.permits("10.1.2.3".parse().unwrap()));
        assert!(allowing.in_allowed_network("10.1.2.3".parse().unwrap()));
        assert!(!allowing.permits("192.168.1.1".parse().unwrap()));
        assert!(!allowing.in_allowed_network("1.1.1.1".parse().unwrap()));
    }

    #[test]
    fn urls_are_checked_by_scheme_and_literal_address() {
        let policy = NetworkPolicy::default();
        let check = |url: &str| policy.check_url(&url.parse().unwrap());
        assert_eq!(check("https://example.com/x"), Ok(()));
        assert_eq!(
            check("http://169.254.169.254/latest/meta-data"),
            Err(Refused::Internal("169.254.169.254".parse().unwrap()))
        );
        assert_eq!(
            check("http://[::1]:8080/"),
            Err(Refused::Internal("::1".parse().unwrap()))
        );
        assert_eq!(
            check("file:///etc/passwd"),
            Err(Refused::Scheme("file".into()))
        );
    }
}
