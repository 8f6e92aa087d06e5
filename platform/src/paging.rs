//! List pagination (AIP-158): page sizes, and opaque page tokens that carry the position after
//! which the next page starts, bound to the filter they were issued for.

use base64::Engine;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::error::FieldViolations;

/// Page size when the request says 0.
pub const DEFAULT_PAGE_SIZE: usize = 50;
/// Largest page size.
pub const MAX_PAGE_SIZE: usize = 100;

/// The page size of a request, or a violation of `page_size`.
pub fn page_size(violations: &mut FieldViolations, requested: i32) -> usize {
    page_size_or(violations, requested, DEFAULT_PAGE_SIZE)
}

/// [`page_size`] for a listing whose size 0 means `default`.
pub fn page_size_or(violations: &mut FieldViolations, requested: i32, default: usize) -> usize {
    match usize::try_from(requested) {
        Ok(0) => default,
        Ok(size) if size <= MAX_PAGE_SIZE => size,
        _ => {
            violations.add(
                "page_size",
                format!("must be between 0 and {MAX_PAGE_SIZE}"),
            );
            default
        }
    }
}

/// A token for the page after `position` of a listing filtered by `filter` (any string that
/// changes when the filter does).
pub fn encode_page_token(filter: &str, position: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("v1\n{filter}\n{position}"))
}

/// The position a page token carries, or a violation of `page_token` when it is malformed or
/// was issued for another filter. An empty token is the first page.
pub fn decode_page_token(
    violations: &mut FieldViolations,
    token: &str,
    filter: &str,
) -> Option<String> {
    if token.is_empty() {
        return None;
    }
    let decoded = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok());
    let parts = decoded.as_deref().and_then(|text| {
        let mut parts = text.splitn(3, '\n');
        Some((parts.next()?, parts.next()?, parts.next()?))
    });
    match parts {
        Some(("v1", token_filter, position)) if token_filter == filter => Some(position.to_owned()),
        Some(("v1", _, _)) => {
            violations.add("page_token", "was issued for another filter");
            None
        }
        _ => {
            violations.add("page_token", "is not a page token this service issued");
            None
        }
    }
}

/// Rows a query fetches for a page of `page_size`: one more, to learn whether a page follows.
pub fn fetch_limit(page_size: usize) -> i64 {
    i64::try_from(page_size + 1).unwrap_or(i64::MAX)
}

/// The page among `rows` (fetched with [`fetch_limit`]) and, when there were more, where the
/// next page starts: `position` of the page's last row.
pub fn split_page<T, P>(
    mut rows: Vec<T>,
    page_size: usize,
    position: impl FnOnce(&T) -> P,
) -> (Vec<T>, Option<P>) {
    if rows.len() <= page_size {
        return (rows, None);
    }
    rows.truncate(page_size);
    let next = rows.last().map(position);
    (rows, next)
}

/// The position of a listing ordered by time and id (newest first): `{RFC 3339}|{uuid}`.
pub fn time_and_id_position(time: DateTime<Utc>, id: impl std::fmt::Display) -> String {
    format!("{}|{id}", time.to_rfc3339())
}

/// The token of the page after `next` (the last row of a page, by time and id) in a listing
/// bound to `filter`; empty on the last page.
pub fn time_and_id_token<T: std::fmt::Display>(
    filter: &str,
    next: Option<(DateTime<Utc>, T)>,
) -> String {
    next.map(|(time, id)| encode_page_token(filter, &time_and_id_position(time, id)))
        .unwrap_or_default()
}

/// The time and id a [`time_and_id_position`] holds; `None` when it holds none.
pub fn time_and_id<T: From<Uuid>>(position: &str) -> Option<(DateTime<Utc>, T)> {
    let (time, id) = position.split_once('|')?;
    Some((
        DateTime::parse_from_rfc3339(time).ok()?.with_timezone(&Utc),
        T::from(Uuid::try_parse(id).ok()?),
    ))
}

/// The position a page token carries, parsed by `parse` ([`decode_page_token`]), or a violation
/// of `page_token` when it does not parse either.
pub fn decode_page_position<T>(
    violations: &mut FieldViolations,
    token: &str,
    filter: &str,
    parse: impl FnOnce(&str) -> Option<T>,
) -> Option<T> {
    let position = decode_page_token(violations, token, filter)?;
    let parsed = parse(&position);
    if parsed.is_none() {
        violations.add("page_token", "is not a page token this service issued");
    }
    parsed
}

/// A checked list request: what to list, where its page starts, how long a page is, and the
/// key (the filter as a string) its page tokens are bound to.
#[derive(Debug)]
pub struct Listing<F, P> {
    /// What to list.
    pub filter: F,
    /// The position the page starts after.
    pub after: Option<P>,
    /// Rows per page.
    pub size: usize,
    /// The filter as page tokens carry it: a token issued for another filter is refused.
    pub key: String,
}

impl<F, I: std::fmt::Display> Listing<F, (DateTime<Utc>, I)> {
    /// The listing of `filter` ordered by time and id, in pages of `size`, its `page_token`
    /// decoded under `key`; or every violation found, `violations` included.
    pub fn by_time_and_id(
        mut violations: FieldViolations,
        filter: F,
        key: String,
        size: usize,
        page_token: &str,
    ) -> Result<Self, FieldViolations>
    where
        I: From<Uuid>,
    {
        let after = decode_page_position(&mut violations, page_token, &key, time_and_id);
        violations.into_result()?;
        Ok(Listing {
            filter,
            after,
            size,
            key,
        })
    }

    /// The token of the page after `next`, the last row of this page; empty on the last page.
    pub fn next_page_token(&self, next: Option<(DateTime<Utc>, I)>) -> String {
        time_and_id_token(&self.key, next)
    }
}

impl<F> Listing<F, i32> {
    /// The listing of the versions of `parent` (newest first), `filter` being `parent`
    /// checked, in pages of `size`: its `page_token` holds the version the page starts before,
    /// bound to `parent`. Or every violation found, `violations` included.
    pub fn of_versions(
        mut violations: FieldViolations,
        filter: Option<F>,
        parent: &str,
        size: usize,
        page_token: &str,
    ) -> Result<Self, FieldViolations> {
        let after = decode_page_position(&mut violations, page_token, parent, |position| {
            position.parse::<i32>().ok()
        });
        match filter {
            Some(filter) if violations.is_empty() => Ok(Listing {
                filter,
                after,
                size,
                key: parent.to_owned(),
            }),
            _ => Err(violations),
        }
    }

    /// The token of the page before version `next`, the last of this page; empty on the last
    /// page.
    pub fn next_page_token(&self, next: Option<i32>) -> String {
        next.map(|version| encode_page_token(&self.key, &version.to_string()))
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    /// Every List request's `page_size` publishes 0 to [`MAX_PAGE_SIZE`] in the OpenAPI
    /// document (ListNodeExecutions, which allows more, is checked by svc-workflow).
    #[test]
    fn every_page_size_publishes_the_enforced_bounds() {
        let mut checked = 0;
        for message in proto::codec::descriptor_pool().all_messages() {
            if message.full_name() == "formflow.workflow.v1.ListNodeExecutionsRequest" {
                continue;
            }
            if message.get_field_by_name("page_size").is_some() {
                let limits = proto::published_limits(message.full_name(), "page_size");
                assert_eq!(
                    (limits.minimum, limits.maximum),
                    (Some(0), Some(super::MAX_PAGE_SIZE as i64)),
                    "{}",
                    message.full_name()
                );
                checked += 1;
            }
        }
        assert!(checked >= 20, "only {checked} List requests found");
    }

    #[test]
    fn a_page_is_cut_at_its_size_and_says_where_the_next_starts() {
        assert_eq!(super::fetch_limit(50), 51);
        assert_eq!(
            super::split_page(vec![1, 2, 3], 2, |last| *last * 10),
            (vec![1, 2], Some(20))
        );
        assert_eq!(
            super::split_page(vec![1, 2], 2, |last| *last * 10),
            (vec![1, 2], None)
        );
        assert_eq!(
            super::split_page(Vec::<u8>::new(), 2, |last| *last),
            (vec![], None)
        );
    }

    use proptest::prelude::*;

    use super::*;

    #[test]
    fn a_listing_reads_its_token_under_its_key_and_issues_the_next() {
        let first: Listing<&str, (DateTime<Utc>, Uuid)> =
            Listing::by_time_and_id(FieldViolations::new(), "all", "state=1".into(), 10, "")
                .unwrap();
        assert_eq!((first.filter, first.after, first.size), ("all", None, 10));
        let last = (
            DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
            Uuid::now_v7(),
        );
        assert_eq!(
            first.next_page_token(None),
            "",
            "no token after the last page"
        );
        let token = first.next_page_token(Some(last));

        let second: Listing<&str, (DateTime<Utc>, Uuid)> =
            Listing::by_time_and_id(FieldViolations::new(), "all", "state=1".into(), 10, &token)
                .unwrap();
        assert_eq!(second.after, Some(last));

        let mut violations = FieldViolations::new();
        violations.add("state", "is not a state");
        let refused = Listing::<&str, (DateTime<Utc>, Uuid)>::by_time_and_id(
            violations,
            "all",
            "state=2".into(),
            10,
            &token,
        )
        .unwrap_err();
        let fields: Vec<_> = refused
            .violations()
            .iter()
            .map(|(field, _)| field.as_str())
            .collect();
        assert_eq!(
            fields,
            ["state", "page_token"],
            "every violation, the caller's first"
        );
    }

    #[test]
    fn tokens_round_trip_within_their_filter() {
        let token = encode_page_token("state=1", "0190-abc");
        let mut violations = FieldViolations::new();
        assert_eq!(
            decode_page_token(&mut violations, &token, "state=1").as_deref(),
            Some("0190-abc")
        );
        assert!(violations.is_empty());
        assert_eq!(decode_page_token(&mut violations, "", "state=1"), None);
        assert!(violations.is_empty());
        assert_eq!(decode_page_token(&mut violations, &token, "state=2"), None);
        assert_eq!(
            decode_page_token(&mut violations, "forged", "state=1"),
            None
        );
        assert_eq!(violations.violations().len(), 2);
    }

    #[test]
    fn positions_that_do_not_parse_are_violations() {
        let token = encode_page_token("", "12");
        let mut violations = FieldViolations::new();
        let parse = |position: &str| position.parse::<u8>().ok();
        assert_eq!(
            decode_page_position(&mut violations, &token, "", parse),
            Some(12)
        );
        assert!(violations.is_empty());
        let token = encode_page_token("", "1200");
        assert_eq!(
            decode_page_position(&mut violations, &token, "", parse),
            None
        );
        assert_eq!(violations.violations().len(), 1);
    }

    #[test]
    fn page_sizes_are_bounded() {
        let mut violations = FieldViolations::new();
        assert_eq!(page_size(&mut violations, 0), DEFAULT_PAGE_SIZE);
        assert_eq!(page_size(&mut violations, 100), 100);
        assert!(violations.is_empty());
        page_size(&mut violations, 101);
        page_size(&mut violations, -1);
        assert_eq!(violations.violations().len(), 2);
    }

    proptest! {
        #[test]
        fn decoding_never_panics(token in "\\PC{0,200}", filter in "\\PC{0,20}") {
            let _ = decode_page_token(&mut FieldViolations::new(), &token, &filter);
        }
    }
}
