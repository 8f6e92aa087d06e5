//! svc-ai's API over real gRPC: a real server with the real model (installed by
//! `scripts/setup.sh`, named by AI_MODELS_DIR and AI_ONNXRUNTIME_LIBRARY), real tokens.

mod embed;
mod helpers;
mod models;
mod permissions;
mod queue;
