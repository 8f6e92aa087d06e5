use std::fmt;

use super::Slug;

/// A custom domain of a tenant (`forms.acme.com`): a lowercase DNS name of at least two
/// labels, not an IP address, and outside the platform's base domain (whose subdomains are
/// tenant slugs).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DomainName(String);

/// Why a domain was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// Not a DNS name of at least two labels.
    #[error("must be a domain name such as forms.example.com")]
    Malformed,
    /// An IPv4 or IPv6 address.
    #[error("must be a domain name, not an IP address")]
    IpAddress,
    /// The platform's base domain or one of its subdomains.
    #[error("must not be the platform's base domain or a subdomain of it")]
    UnderBaseDomain,
}

impl DomainName {
    /// Validates a domain, lower-casing it and dropping a trailing dot.
    pub fn parse(text: &str, base_domain: Option<&str>) -> Result<DomainName, DomainError> {
        let domain = text.trim().trim_end_matches('.').to_ascii_lowercase();
        if domain.parse::<std::net::IpAddr>().is_ok() {
            return Err(DomainError::IpAddress);
        }
        if domain.is_empty() || domain.len() > 253 {
            return Err(DomainError::Malformed);
        }
        let labels: Vec<&str> = domain.split('.').collect();
        let labels_ok = labels.len() >= 2
            && labels.iter().all(|label| {
                (1..=63).contains(&label.len())
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label.bytes().all(|byte| {
                        byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-'
                    })
            });
        // The last label of a real name is never all digits (that would be an IPv4 address).
        let top_level_ok = labels
            .last()
            .is_some_and(|label| !label.bytes().all(|byte| byte.is_ascii_digit()));
        if !labels_ok || !top_level_ok {
            return Err(DomainError::Malformed);
        }
        if let Some(base) = base_domain
            && (domain == base || domain.ends_with(&format!(".{base}")))
        {
            return Err(DomainError::UnderBaseDomain);
        }
        Ok(DomainName(domain))
    }

    /// The domain.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DomainName {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

/// What a request host names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    /// `{slug}.{base domain}`.
    Subdomain(Slug),
    /// A custom domain.
    Custom(DomainName),
}

impl Host {
    /// Interprets a request host (port allowed) against the platform's base domain. `None`
    /// when it names no tenant: malformed, the bare base domain, a reserved or invalid slug,
    /// or a deeper subdomain of the base.
    pub fn parse(text: &str, base_domain: Option<&str>) -> Option<Host> {
        let host = strip_port(text.trim())
            .trim_end_matches('.')
            .to_ascii_lowercase();
        if let Some(base) = base_domain
            && let Some(label) = host.strip_suffix(&format!(".{base}"))
        {
            return Slug::parse(label).ok().map(Host::Subdomain);
        }
        DomainName::parse(&host, base_domain).ok().map(Host::Custom)
    }
}

fn strip_port(host: &str) -> &str {
    match host.rsplit_once(':') {
        Some((name, port))
            if !name.contains(':') && port.bytes().all(|byte| byte.is_ascii_digit()) =>
        {
            name
        }
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const BASE: Option<&str> = Some("forms.example.com");

    #[test]
    fn domains_are_normalised() {
        assert_eq!(
            DomainName::parse(" Forms.ACME.com. ", BASE)
                .unwrap()
                .as_str(),
            "forms.acme.com"
        );
        assert_eq!(
            DomainName::parse("acme.io", None).unwrap().as_str(),
            "acme.io"
        );
    }

    #[test]
    fn malformed_domains_and_addresses_are_refused() {
        for bad in [
            "",
            "localhost",
            "acme..com",
            "-acme.com",
            "acme-.com",
            "ac me.com",
            "acme.123",
        ] {
            assert_eq!(
                DomainName::parse(bad, BASE),
                Err(DomainError::Malformed),
                "{bad:?}"
            );
        }
        assert_eq!(
            DomainName::parse("10.0.0.1", BASE),
            Err(DomainError::IpAddress)
        );
        assert_eq!(DomainName::parse("::1", BASE), Err(DomainError::IpAddress));
        assert_eq!(
            DomainName::parse(&format!("{}.com", "a".repeat(64)), BASE),
            Err(DomainError::Malformed)
        );
    }

    #[test]
    fn the_base_domain_is_not_a_custom_domain() {
        assert_eq!(
            DomainName::parse("forms.example.com", BASE),
            Err(DomainError::UnderBaseDomain)
        );
        assert_eq!(
            DomainName::parse("acme.forms.example.com", BASE),
            Err(DomainError::UnderBaseDomain)
        );
        assert!(DomainName::parse("example.com", BASE).is_ok());
    }

    #[test]
    fn hosts_name_subdomains_or_custom_domains() {
        assert_eq!(
            Host::parse("acme.forms.example.com:8443", BASE),
            Some(Host::Subdomain(Slug::parse("acme").unwrap()))
        );
        assert_eq!(
            Host::parse("Forms.Acme.com", BASE),
            Some(Host::Custom(
                DomainName::parse("forms.acme.com", None).unwrap()
            ))
        );
        assert_eq!(Host::parse("forms.example.com", BASE), None);
        assert_eq!(Host::parse("www.forms.example.com", BASE), None);
        assert_eq!(Host::parse("a.b.forms.example.com", BASE), None);
        assert_eq!(Host::parse("127.0.0.1:8080", BASE), None);
        assert_eq!(Host::parse("[::1]:8080", BASE), None);
        assert_eq!(
            Host::parse("acme.forms.example.com", None),
            Some(Host::Custom(
                DomainName::parse("acme.forms.example.com", None).unwrap()
            ))
        );
    }

    proptest! {
        #[test]
        fn host_parsing_never_panics(text in "\\PC{0,300}") {
            let _ = Host::parse(&text, BASE);
            let _ = DomainName::parse(&text, BASE);
        }
    }
}
