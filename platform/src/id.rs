//! Typed ids: every resource id is a newtype over a UUIDv7, declared with [`id!`](crate::id),
//! so a form id can never be passed where a tenant id is expected and a raw `Uuid` never
//! crosses a module boundary.

/// Error of parsing an id that is not a UUID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} must be a UUID")]
pub struct InvalidId {
    what: &'static str,
}

impl InvalidId {
    /// The error for an id of `what` (`"tenant id"`).
    pub fn new(what: &'static str) -> Self {
        Self { what }
    }
}

/// Declares an id type: a `Copy` newtype over a UUID with `generate` (UUIDv7, time-ordered),
/// `parse`, `as_uuid`, `Display`, `FromStr`, `From<Uuid>` and serde as the plain UUID string.
///
/// ```ignore
/// platform::id!(
///     /// Id of a form.
///     FormId,
///     "form id"
/// );
/// ```
#[macro_export]
macro_rules! id {
    ($(#[$meta:meta])* $name:ident, $what:literal) => {
        $(#[$meta])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord,
            $crate::__private::serde::Serialize, $crate::__private::serde::Deserialize,
        )]
        #[serde(transparent, crate = "::platform::__private::serde")]
        pub struct $name($crate::__private::uuid::Uuid);

        impl $name {
            /// A new, time-ordered (UUIDv7) id.
            pub fn generate() -> Self {
                Self($crate::__private::uuid::Uuid::now_v7())
            }

            /// Parses the canonical hyphenated UUID form.
            pub fn parse(text: &str) -> Result<Self, $crate::id::InvalidId> {
                $crate::__private::uuid::Uuid::try_parse(text)
                    .map(Self)
                    .map_err(|_| $crate::id::InvalidId::new($what))
            }

            /// The underlying UUID.
            pub fn as_uuid(&self) -> $crate::__private::uuid::Uuid {
                self.0
            }
        }

        impl From<$crate::__private::uuid::Uuid> for $name {
            fn from(uuid: $crate::__private::uuid::Uuid) -> Self {
                Self(uuid)
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::id::InvalidId;
            fn from_str(text: &str) -> Result<Self, Self::Err> {
                Self::parse(text)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(formatter)
            }
        }
    };
}
