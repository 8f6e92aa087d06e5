//! Configuration of svc-ai: flags and environment variables (`svc-ai --help`).

use std::path::PathBuf;
use std::time::Duration;

use platform::config::{ServiceConfig, parse_duration};
use platform::suite::Ai;

/// svc-ai's configuration: the kit's blocks and its own options.
pub type Config = ServiceConfig<Ai, AiOptions>;

/// What svc-ai needs besides the kit's blocks.
#[derive(Debug, Clone, clap::Args)]
pub struct AiOptions {
    #[command(flatten)]
    pub models: ModelsConfig,
    /// How long a classification result stays in the Redis cache: the same text against the
    /// same model and label-set version within it is answered without inference. 0s turns
    /// the cache off.
    #[arg(long, env = "AI_CACHE_TTL", default_value = "24h", value_parser = parse_duration)]
    pub cache_ttl: Duration,
    /// Batch jobs each replica works on at once (from the queue `jobs.ai`); 0 works on none:
    /// a replica that only serves the API.
    #[arg(long, env = "AI_BATCH_CONCURRENCY", default_value_t = 1, value_parser = clap::value_parser!(u16).range(0..=64))]
    pub batch_concurrency: u16,
    /// How long a worker holds a batch job between two chunks of 32 items; a job whose worker
    /// died is taken over once this passes.
    #[arg(long, env = "AI_BATCH_LEASE", default_value = "60s", value_parser = parse_duration)]
    pub batch_lease: Duration,
    /// How many of a tenant's newest submission analyses a similar-submission search compares
    /// at most (an exact scan: its time grows with this bound; docs/benchmarks.md).
    #[arg(long, env = "AI_SIMILAR_SCAN_LIMIT", default_value_t = 20_000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub similar_scan_limit: u32,
    /// The model that reads a ticket's sentiment in ClassifyTicket, whatever model reads its
    /// category and priority (e5 reads the writer's mood better than MiniLM:
    /// docs/benchmarks.md); it must be installed. Empty: the call's model reads all three.
    #[arg(
        long,
        env = "AI_TICKET_SENTIMENT_MODEL",
        default_value = "multilingual-e5-small"
    )]
    pub ticket_sentiment_model: String,
}

/// Where the models are and how much CPU and memory inference may take.
#[derive(Debug, Clone, clap::Args)]
pub struct ModelsConfig {
    /// Directory of the installed models: one subdirectory per model, holding its
    /// `model.json` manifest, ONNX file and tokenizer (`scripts/fetch-ai-assets.sh` installs
    /// them; the image has them at this default).
    #[arg(long, env = "AI_MODELS_DIR", default_value = "/opt/formflow/ai/models")]
    pub models_dir: PathBuf,
    /// The ONNX Runtime shared library (1.31 or newer), opened at start.
    #[arg(
        long,
        env = "AI_ONNXRUNTIME_LIBRARY",
        default_value = "/opt/formflow/ai/onnxruntime/libonnxruntime.so"
    )]
    pub onnxruntime_library: PathBuf,
    /// Threads of the inference pool that every model shares: the CPUs inference may use.
    #[arg(long, env = "AI_INFERENCE_THREADS", default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub inference_threads: u16,
    /// Requests a model may have waiting; more answer RESOURCE_EXHAUSTED at once.
    #[arg(long, env = "AI_QUEUE_CAPACITY", default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub queue_capacity: u32,
    /// Most texts run through a model at once (waiting requests are batched up to it, texts of
    /// similar length together).
    #[arg(long, env = "AI_MAX_BATCH", default_value_t = 32, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub max_batch: u16,
    /// Longest a request may wait in the queue; it then fails with UNAVAILABLE instead of
    /// running for a caller that has likely given up.
    #[arg(long, env = "AI_QUEUE_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub queue_timeout: Duration,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_is_well_formed() {
        Config::command().debug_assert();
    }
}
