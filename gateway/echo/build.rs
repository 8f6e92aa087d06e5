//! Compiles the echo service and writes its descriptor set (with imports), which the gateway's
//! tests hand to the gateway as a file, the way another team's API would be.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto = PathBuf::from("protos/acme/echo/v1/echo.proto");
    let suite_protos = PathBuf::from("../../proto/protos");
    println!("cargo:rerun-if-changed=protos");
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    let mut config = prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    tonic_prost_build::configure()
        .file_descriptor_set_path(out_dir.join("echo_descriptor.bin"))
        .build_client(true)
        .compile_with_config(
            config,
            &[proto],
            &[
                PathBuf::from("protos"),
                suite_protos,
                protoc_bin_vendored::include_path()?,
            ],
        )?;
    Ok(())
}
