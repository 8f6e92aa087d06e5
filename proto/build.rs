//! Compiles every `.proto` under `protos/formflow` into tonic/prost types with pbjson serde
//! impls, and writes one descriptor set (with imports) for reflection and the gateway.

use std::path::{Path, PathBuf};

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

    let mut prost_config = prost_build::Config::new();
    prost_config.protoc_executable(protoc);
    tonic_prost_build::configure()
        .file_descriptor_set_path(&descriptor_path)
        // pbjson-types replaces prost-types so that well-known types get proto3 JSON; that in
        // turn requires compiling the well-known types as extern paths.
        .compile_well_known_types(true)
        .extern_path(".google.protobuf", "::pbjson_types")
        .compile_with_config(prost_config, &protos, &[proto_root, well_known_includes])?;

    let descriptor_set = std::fs::read(&descriptor_path)?;
    pbjson_build::Builder::new()
        .register_descriptors(&descriptor_set)?
        .preserve_proto_field_names()
        .build(&[".formflow", ".google.api"])?;
    Ok(())
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
