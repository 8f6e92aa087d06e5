//! FormFlow's protobuf API.
//!
//! The `.proto` sources live in `protos/`; `build.rs` compiles them into this crate at build
//! time (nothing generated is committed). Modules mirror the protobuf packages:
//!
//! - [`formflow::api::v1`] — options shared by every service (which RPCs are public).
//! - [`formflow::tenant::v1`] — `TenantService`.
//! - [`formflow::auth::v1`] — `AuthService`.
//! - [`formflow::forms::v1`] — `FormService`.
//! - [`formflow::workflow::v1`] — `WorkflowService`.
//! - [`formflow::ai::v1`] — `AiService`.
//! - [`formflow::notify::v1`] — `NotifyService`.
//! - [`formflow::events::v1`] — payloads of the events published on RabbitMQ.
//! - [`google::api`] — the HTTP annotations the gateway transcodes from.
//!
//! Every message has serde impls that follow the proto3 JSON mapping (pbjson), writing proto
//! field names and accepting lowerCamelCase too. [`FILE_DESCRIPTOR_SET`] holds the descriptors of
//! every file, imports included, for server reflection and for the gateway.

pub use pbjson_types;
pub use prost;
pub use tonic;

pub mod codec;

/// Serialized `google.protobuf.FileDescriptorSet` of every FormFlow proto and its imports.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/formflow_descriptor.bin"));

macro_rules! include_package {
    ($package:literal) => {
        include!(concat!(env!("OUT_DIR"), "/", $package, ".rs"));
        include!(concat!(env!("OUT_DIR"), "/", $package, ".serde.rs"));
    };
}

// Generated code: rustdoc and lint rules for hand-written code don't apply to it.
#[allow(unreachable_pub, missing_debug_implementations, clippy::all)]
pub mod formflow {
    pub mod api {
        pub mod v1 {
            include_package!("formflow.api.v1");
        }
    }
    pub mod tenant {
        pub mod v1 {
            include_package!("formflow.tenant.v1");
        }
    }
    pub mod auth {
        pub mod v1 {
            include_package!("formflow.auth.v1");
        }
    }
    pub mod forms {
        pub mod v1 {
            include_package!("formflow.forms.v1");
        }
    }
    pub mod workflow {
        pub mod v1 {
            include_package!("formflow.workflow.v1");
        }
    }
    pub mod ai {
        pub mod v1 {
            include_package!("formflow.ai.v1");
        }
    }
    pub mod notify {
        pub mod v1 {
            include_package!("formflow.notify.v1");
        }
    }
    pub mod events {
        pub mod v1 {
            include_package!("formflow.events.v1");
        }
    }
}

#[allow(unreachable_pub, missing_debug_implementations, clippy::all)]
pub mod google {
    pub mod api {
        include_package!("google.api");
    }
}

include!(concat!(env!("OUT_DIR"), "/rpc_messages.rs"));

/// The limits `formflow.api.v1.limits` publishes for `field` (what the gateway's OpenAPI
/// document says of its values), if it has any.
pub fn field_limits(
    field: &prost_reflect::FieldDescriptor,
) -> Option<formflow::api::v1::FieldLimits> {
    let extension = field
        .parent_pool()
        .get_extension_by_name("formflow.api.v1.limits")?;
    let options = field.options();
    if !options.has_extension(&extension) {
        return None;
    }
    options
        .get_extension(&extension)
        .as_message()?
        .transcode_to()
        .ok()
}

/// The limits the protos publish for `field` of the message named `message` in full
/// (`formflow.tenant.v1.Tenant`), for services' tests to compare with what they enforce.
///
/// # Panics
/// When the message or the field does not exist.
pub fn published_limits(message: &str, field: &str) -> formflow::api::v1::FieldLimits {
    let descriptor = codec::descriptor_pool()
        .get_message_by_name(message)
        .unwrap_or_else(|| panic!("no message {message}"));
    let field = descriptor
        .get_field_by_name(field)
        .unwrap_or_else(|| panic!("{message} has no field {field}"));
    field_limits(&field).unwrap_or_default()
}
