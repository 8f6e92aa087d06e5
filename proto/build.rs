//! Compiles every `.proto` under `protos/formflow` into tonic/prost types with pbjson serde
//! impls, and writes one descriptor set (with imports) for reflection and the gateway.
//!
//! The servers of [`DRAFT_SERVICES`] get default methods answering UNIMPLEMENTED, so a service
//! whose issue has not landed registers its API and gains RPCs one at a time; every other
//! service must implement each RPC of its proto, which the compiler checks.

use std::path::{Path, PathBuf};

/// The protos of services still being built: their generated servers have default stubs.
/// Remove a service from here once all its RPCs are implemented. Every service of the suite
/// is built today, so the compiler checks that each implements every RPC of its proto.
const DRAFT_SERVICES: &[&str] = &[];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto_root = PathBuf::from("protos");
    let mut protos = Vec::new();
    collect_protos(&proto_root.join("formflow"), &mut protos)?;
    protos.sort();
    println!("cargo:rerun-if-changed={}", proto_root.display());
    for proto in &protos {
        println!("cargo:rerun-if-changed={}", proto.display());
    }

    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    let descriptor_path = out_dir.join("formflow_descriptor.bin");
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    let well_known_includes = protoc_bin_vendored::include_path()?;

    let includes = [proto_root.clone(), well_known_includes];
    let mut prost_config = prost_build::Config::new();
    prost_config.protoc_executable(&protoc);
    tonic_builder()
        .file_descriptor_set_path(&descriptor_path)
        .compile_with_config(prost_config, &protos, &includes)?;
    // The drafts again, with stubs: this overwrites their packages' files (and rewrites the
    // files of what they import, identically).
    let drafts: Vec<PathBuf> = DRAFT_SERVICES
        .iter()
        .map(|draft| proto_root.join(draft))
        .collect();
    if !drafts.is_empty() {
        let mut prost_config = prost_build::Config::new();
        prost_config.protoc_executable(&protoc);
        tonic_builder()
            .generate_default_stubs(true)
            .compile_with_config(prost_config, &drafts, &includes)?;
    }

    let descriptor_set = std::fs::read(&descriptor_path)?;
    std::fs::write(
        out_dir.join("rpc_messages.rs"),
        rpc_message_impls(&descriptor_set)?,
    )?;
    pbjson_build::Builder::new()
        .register_descriptors(&descriptor_set)?
        .preserve_proto_field_names()
        .build(&[".formflow", ".google.api"])?;
    Ok(())
}

fn tonic_builder() -> tonic_prost_build::Builder {
    tonic_prost_build::configure()
        // Every server and client decodes through the suite's codec (src/codec.rs), which
        // refuses input no service can store.
        .codec_path("crate::codec::CheckedCodec")
        // pbjson-types replaces prost-types so that well-known types get proto3 JSON; that in
        // turn requires compiling the well-known types as extern paths.
        .compile_well_known_types(true)
        .extern_path(".google.protobuf", "::pbjson_types")
}

/// `impl RpcMessage` for every input and output type of every service, which the codec needs.
fn rpc_message_impls(descriptor_set: &[u8]) -> Result<String, Box<dyn std::error::Error>> {
    let pool = prost_reflect::DescriptorPool::decode(descriptor_set)?;
    let mut messages = std::collections::BTreeMap::new();
    for service in pool.services() {
        for method in service.methods() {
            *messages
                .entry(method.input().full_name().to_owned())
                .or_insert(false) = true;
            messages
                .entry(method.output().full_name().to_owned())
                .or_insert(false);
        }
    }
    let mut impls = String::new();
    for (full_name, is_request) in messages {
        let (package, name) = full_name
            .rsplit_once('.')
            .ok_or("a message outside a package")?;
        let path = match package {
            "google.protobuf" => format!("::pbjson_types::{name}"),
            package => format!("crate::{}::{name}", package.replace('.', "::")),
        };
        impls.push_str(&format!(
            "impl crate::codec::RpcMessage for {path} {{\n    \
             const FULL_NAME: &'static str = \"{full_name}\";\n    \
             const IS_REQUEST: bool = {is_request};\n}}\n"
        ));
    }
    Ok(impls)
}

fn collect_protos(dir: &Path, protos: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_protos(&path, protos)?;
        } else if path
            .extension()
            .is_some_and(|extension| extension == "proto")
        {
            protos.push(path);
        }
    }
    Ok(())
}
