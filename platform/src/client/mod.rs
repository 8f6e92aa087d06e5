//! Calling another suite service: a channel with the suite's timeouts that spreads calls over
//! every replica of the service ([`balance`]), connected lazily so a service starts while the
//! one it calls is still coming up, and requests that carry the caller's bearer token and the
//! request id of the call they belong to.

pub mod balance;

use std::time::Duration;

use anyhow::Context;

pub use self::balance::{BalanceOptions, Balanced};
use crate::context::REQUEST_ID_HEADER;

/// Longest wait for a connection to a suite service.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest wait for a suite service's answer.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// A channel to the service at `url` (`setting` names where the URL came from, for the error),
/// balanced over the addresses its host resolves to, with [`CONNECT_TIMEOUT`] and
/// [`REQUEST_TIMEOUT`].
pub fn channel(url: &str, setting: &str) -> anyhow::Result<Balanced> {
    Balanced::new(
        url,
        setting,
        BalanceOptions {
            timeout: Some(REQUEST_TIMEOUT),
            ..BalanceOptions::new(CONNECT_TIMEOUT)
        },
    )
}

/// A request carrying `token` as its bearer and, when the call belongs to one, the request id
/// of the call being served, so the logs of both services tell one story.
pub fn authorized<T>(
    message: T,
    token: &str,
    request_id: Option<&str>,
) -> anyhow::Result<tonic::Request<T>> {
    let mut request = tonic::Request::new(message);
    let metadata = request.metadata_mut();
    metadata.insert(
        "authorization",
        format!("Bearer {token}")
            .parse()
            .context("a token is ASCII")?,
    );
    if let Some(request_id) = request_id.and_then(|id| id.parse().ok()) {
        metadata.insert(REQUEST_ID_HEADER, request_id);
    }
    Ok(request)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_carry_the_token_and_the_request_id() {
        let request = authorized((), "abc.def", Some("req-1")).unwrap();
        let metadata = request.metadata();
        assert_eq!(metadata.get("authorization").unwrap(), "Bearer abc.def");
        assert_eq!(metadata.get(REQUEST_ID_HEADER).unwrap(), "req-1");
        let without = authorized((), "abc.def", None).unwrap();
        assert!(without.metadata().get(REQUEST_ID_HEADER).is_none());
    }

    #[test]
    fn bad_urls_name_their_setting() {
        let error = channel("not a url", "AUTH_URL").unwrap_err();
        assert_eq!(error.to_string(), "AUTH_URL is not a valid URL");
        let error = channel("/only/a/path", "AUTH_URL").unwrap_err();
        assert_eq!(error.to_string(), "AUTH_URL names no host");
    }
}
