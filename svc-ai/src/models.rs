//! The installed models: their manifests, ONNX Runtime, and one loaded embedding model.
//!
//! A model is a directory under `AI_MODELS_DIR` holding a `model.json` manifest (id, tasks,
//! dimensions, files), the ONNX graph and the tokenizer. Sentence-embedding models are
//! BERT-style encoders: token ids in, one hidden state per token out; the embedding of a text
//! is the mean of its tokens' states, L2-normalised, so that cosine similarity is a dot product.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{Context, bail, ensure};
use ort::environment::{Environment, GlobalThreadPoolOptions};
use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;
use ort::value::TensorRef;
use serde::Deserialize;
use tokenizers::{Tokenizer, TruncationParams};

/// The file naming a model and what it serves, in the model's directory.
pub const MANIFEST_FILE: &str = "model.json";

/// What a model's `model.json` says.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Id (`all-minilm-l6-v2`): lowercase letters, digits, `.`, `_` and `-`.
    pub id: String,
    /// Human-readable name.
    pub display_name: String,
    /// Where the weights come from (shown to operators, not used).
    #[serde(default)]
    pub source: String,
    /// Tasks it serves.
    pub tasks: Vec<Task>,
    /// Size of its embeddings.
    pub dimensions: usize,
    /// Longest input in tokens, special tokens included; longer texts are truncated.
    pub max_input_tokens: usize,
    /// Weight quantization (`int8`).
    pub quantization: String,
    /// ISO 639-1 codes of the languages it handles well.
    #[serde(default)]
    pub languages: Vec<String>,
    /// The ONNX graph, relative to the model's directory.
    pub model_file: PathBuf,
    /// The Hugging Face `tokenizer.json`, relative to the model's directory.
    pub tokenizer_file: PathBuf,
    /// Name of the graph output holding the per-token hidden states `[batch, tokens, dims]`.
    pub output: String,
    /// How token states become one vector; only `mean` is supported.
    pub pooling: String,
    /// What the model reads before every text (`"query: "` for e5, as its card asks); not
    /// counted in a text's tokens.
    #[serde(default)]
    pub text_prefix: String,
    /// Most texts one run of the model takes (below `AI_MAX_BATCH`). 1 for a model whose
    /// activations are quantised per run (dynamic int8): run with others, a text's vector
    /// would depend on them, and stored, cached and compared vectors must not.
    #[serde(default)]
    pub max_batch: Option<usize>,
}

/// A task a model serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Task {
    /// Text embeddings.
    Embedding,
}

impl Manifest {
    fn validate(&self) -> anyhow::Result<()> {
        ensure!(
            !self.id.is_empty()
                && self.id.len() <= 63
                && self.id.bytes().all(|byte| {
                    byte.is_ascii_lowercase() || byte.is_ascii_digit() || b"._-".contains(&byte)
                }),
            "id {:?} must be 1 to 63 lowercase letters, digits, `.`, `_` or `-`",
            self.id
        );
        ensure!(!self.tasks.is_empty(), "it names no task");
        ensure!(self.dimensions > 0, "dimensions must be positive");
        ensure!(
            self.max_input_tokens >= 2,
            "max_input_tokens must be at least 2"
        );
        ensure!(self.max_batch != Some(0), "max_batch must be at least 1");
        ensure!(
            self.pooling == "mean",
            "pooling {:?} is not supported (only \"mean\")",
            self.pooling
        );
        Ok(())
    }
}

/// Reads the manifest of every model under `dir`, sorted by id. Fails when there is none, or
/// when one is unreadable or two share an id.
pub fn discover(dir: &Path) -> anyhow::Result<Vec<(PathBuf, Manifest)>> {
    let entries = std::fs::read_dir(dir).with_context(|| {
        format!(
            "reading the models directory {} (scripts/fetch-ai-assets.sh installs it)",
            dir.display()
        )
    })?;
    let mut found = Vec::new();
    for entry in entries {
        let model_dir = entry?.path();
        let manifest_path = model_dir.join(MANIFEST_FILE);
        if !manifest_path.is_file() {
            continue;
        }
        let manifest: Manifest = std::fs::read(&manifest_path)
            .map_err(anyhow::Error::from)
            .and_then(|bytes| Ok(serde_json::from_slice(&bytes)?))
            .and_then(|manifest: Manifest| manifest.validate().map(|()| manifest))
            .with_context(|| format!("reading {}", manifest_path.display()))?;
        found.push((model_dir, manifest));
    }
    found.sort_by(|(_, a), (_, b)| a.id.cmp(&b.id));
    if let Some(pair) = found.windows(2).find(|pair| pair[0].1.id == pair[1].1.id) {
        bail!(
            "two models under {} have the id {}",
            dir.display(),
            pair[0].1.id
        );
    }
    ensure!(
        !found.is_empty(),
        "no model under {} (each model is a directory with a {MANIFEST_FILE})",
        dir.display()
    );
    Ok(found)
}

/// The version of the model in `dir`: the first 16 hex digits of the SHA-256 of its ONNX file
/// and tokenizer, so that a result names exactly what computed it.
pub fn version(dir: &Path, manifest: &Manifest) -> anyhow::Result<String> {
    let mut context = ring::digest::Context::new(&ring::digest::SHA256);
    for file in [&manifest.model_file, &manifest.tokenizer_file] {
        let path = dir.join(file);
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        context.update(&(bytes.len() as u64).to_be_bytes());
        context.update(&bytes);
    }
    Ok(context.finish().as_ref()[..8]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect())
}

/// The process's ONNX Runtime: loaded from `library` with one pool of `threads` inference
/// threads that every model's session shares. ONNX Runtime allows one environment per process,
/// so a second call (tests start several servers in one process) returns the first one.
pub fn runtime(library: &Path, threads: u16) -> anyhow::Result<&'static Environment> {
    static RUNTIME: OnceLock<Environment> = OnceLock::new();
    ensure!(
        library.is_file(),
        "the ONNX Runtime library {} does not exist (scripts/fetch-ai-assets.sh installs it)",
        library.display()
    );
    if let Some(environment) = RUNTIME.get() {
        return Ok(environment);
    }
    // First: any other ort call would open the library from the default path.
    let builder = ort::init_from(library)
        .with_context(|| format!("loading ONNX Runtime from {}", library.display()))?;
    let pool = GlobalThreadPoolOptions::default()
        .with_intra_threads(usize::from(threads))
        .and_then(|pool| pool.with_inter_threads(1))
        // Idle inference threads sleep instead of spinning: spinning doubles the CPU per text.
        .and_then(|pool| pool.with_spin_control(false))
        .map_err(ort_error)?;
    let environment = builder
        .with_name("svc-ai")
        .with_telemetry(false)
        .with_global_thread_pool(pool)
        .build()
        .map_err(ort_error)?;
    Ok(RUNTIME.get_or_init(|| environment))
}

/// One text's embedding.
#[derive(Debug, Clone, PartialEq)]
pub struct Embedded {
    /// The L2-normalised vector.
    pub vector: Vec<f32>,
    /// Tokens read from the text (special tokens not counted).
    pub tokens: usize,
    /// Whether the text was cut at the model's input limit.
    pub truncated: bool,
}

/// A loaded embedding model. Not shared: [`crate::pool`] gives each its own thread.
#[derive(Debug)]
pub struct Embedder {
    manifest: Manifest,
    tokenizer: Tokenizer,
    session: Session,
    wants_token_types: bool,
    /// Tokens of the manifest's `text_prefix`.
    prefix_tokens: usize,
}

impl Embedder {
    /// Loads the model in `dir` as its manifest describes, on `runtime`'s thread pool.
    pub fn load(runtime: &Environment, dir: &Path, manifest: Manifest) -> anyhow::Result<Self> {
        let mut tokenizer = Tokenizer::from_file(dir.join(&manifest.tokenizer_file))
            .map_err(|error| anyhow::anyhow!("{error}"))
            .with_context(|| format!("loading the tokenizer of {}", manifest.id))?;
        // Texts are padded per batch (to its longest text), not to the file's fixed length.
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: manifest.max_input_tokens,
                ..TruncationParams::default()
            }))
            .map_err(|error| anyhow::anyhow!("{error}"))?;
        let model_path = dir.join(&manifest.model_file);
        let session = Session::builder(runtime)
            .and_then(|builder| Ok(builder.with_optimization_level(GraphOptimizationLevel::All)?))
            .and_then(|builder| Ok(builder.with_intra_op_spinning(false)?))
            .and_then(|mut builder| builder.commit_from_file(&model_path))
            .map_err(ort_error)
            .with_context(|| format!("loading {}", model_path.display()))?;
        let inputs: Vec<&str> = session.inputs().iter().map(|input| input.name()).collect();
        for required in ["input_ids", "attention_mask"] {
            ensure!(
                inputs.contains(&required),
                "{} has no `{required}` input (it has {inputs:?})",
                model_path.display()
            );
        }
        ensure!(
            session
                .outputs()
                .iter()
                .any(|output| output.name() == manifest.output),
            "{} has no `{}` output",
            model_path.display(),
            manifest.output
        );
        let wants_token_types = inputs.contains(&"token_type_ids");
        // Without its trailing space, which goes to the text's first word.
        let prefix_tokens = tokenizer
            .encode(manifest.text_prefix.trim_end(), false)
            .map_err(|error| anyhow::anyhow!("tokenizing the text prefix: {error}"))?
            .len();
        Ok(Self {
            manifest,
            tokenizer,
            session,
            wants_token_types,
            prefix_tokens,
        })
    }

    /// The model's manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Tokenizes one text, after the model's text prefix (truncated to the model's input
    /// limit).
    pub fn tokenize(&self, text: &str) -> anyhow::Result<tokenizers::Encoding> {
        let encoded = if self.manifest.text_prefix.is_empty() {
            self.tokenizer.encode(text, true)
        } else {
            self.tokenizer
                .encode(format!("{}{text}", self.manifest.text_prefix), true)
        };
        encoded.map_err(|error| anyhow::anyhow!("tokenizing: {error}"))
    }

    /// Embeds tokenized texts in one run of the model, padding them to the longest.
    pub fn embed(&mut self, encodings: &[&tokenizers::Encoding]) -> anyhow::Result<Vec<Embedded>> {
        let batch = encodings.len();
        let longest = encodings
            .iter()
            .map(|encoding| encoding.get_ids().len())
            .max()
            .unwrap_or(0);
        if batch == 0 || longest == 0 {
            return Ok(Vec::new());
        }
        let mut ids = vec![0_i64; batch * longest];
        let mut mask = vec![0_i64; batch * longest];
        for (row, encoding) in encodings.iter().enumerate() {
            let start = row * longest;
            for (column, &id) in encoding.get_ids().iter().enumerate() {
                ids[start + column] = i64::from(id);
                mask[start + column] = 1;
            }
        }
        let shape = [batch as i64, longest as i64];
        let token_types = vec![0_i64; if self.wants_token_types { ids.len() } else { 0 }];
        let mut inputs = ort::inputs![
            "input_ids" => TensorRef::from_array_view((shape, ids.as_slice())).map_err(ort_error)?,
            "attention_mask" => TensorRef::from_array_view((shape, mask.as_slice())).map_err(ort_error)?,
        ];
        if self.wants_token_types {
            inputs.push((
                "token_type_ids".into(),
                TensorRef::from_array_view((shape, token_types.as_slice()))
                    .map_err(ort_error)?
                    .into(),
            ));
        }
        let outputs = self.session.run(inputs).map_err(ort_error)?;
        let (output_shape, hidden) = outputs[self.manifest.output.as_str()]
            .try_extract_tensor::<f32>()
            .map_err(ort_error)?;
        let dimensions = self.manifest.dimensions;
        ensure!(
            **output_shape == [batch as i64, longest as i64, dimensions as i64],
            "the model answered a tensor of shape {output_shape:?}, not [{batch}, {longest}, {dimensions}]"
        );
        Ok(encodings
            .iter()
            .enumerate()
            .map(|(row, encoding)| {
                let states = &hidden[row * longest * dimensions..(row + 1) * longest * dimensions];
                let length = encoding.get_ids().len();
                Embedded {
                    vector: mean_pool(&states[..length * dimensions], dimensions),
                    tokens: encoding
                        .get_special_tokens_mask()
                        .iter()
                        .filter(|&&special| special == 0)
                        .count()
                        .saturating_sub(self.prefix_tokens),
                    truncated: !encoding.get_overflowing().is_empty(),
                }
            })
            .collect())
    }
}

/// The mean of `states` (consecutive vectors of `dimensions`), L2-normalised.
fn mean_pool(states: &[f32], dimensions: usize) -> Vec<f32> {
    let mut sum = vec![0_f32; dimensions];
    for state in states.chunks_exact(dimensions) {
        for (total, value) in sum.iter_mut().zip(state) {
            *total += value;
        }
    }
    let norm = sum.iter().map(|value| value * value).sum::<f32>().sqrt();
    if norm > 0.0 {
        sum.iter_mut().for_each(|value| *value /= norm);
    }
    sum
}

fn ort_error(error: ort::Error) -> anyhow::Error {
    anyhow::anyhow!("ONNX Runtime: {error}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_pooling_averages_tokens_and_normalises() {
        let pooled = mean_pool(&[1.0, 0.0, 3.0, 4.0], 2);
        // mean (2, 2) normalised
        let expected = 1.0 / 2_f32.sqrt();
        assert!((pooled[0] - expected).abs() < 1e-6 && (pooled[1] - expected).abs() < 1e-6);
        assert_eq!(mean_pool(&[0.0, 0.0], 2), vec![0.0, 0.0]);
    }

    fn manifest(id: &str) -> String {
        format!(
            r#"{{"id": "{id}", "display_name": "Test", "tasks": ["embedding"], "dimensions": 4,
                "max_input_tokens": 16, "quantization": "int8", "model_file": "model.onnx",
                "tokenizer_file": "tokenizer.json", "output": "last_hidden_state", "pooling": "mean"}}"#
        )
    }

    fn models_dir(models: &[(&str, String)]) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("svc-ai-models-{}", uuid::Uuid::new_v4()));
        for (name, manifest) in models {
            std::fs::create_dir_all(dir.join(name)).unwrap();
            std::fs::write(dir.join(name).join(MANIFEST_FILE), manifest).unwrap();
        }
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn models_are_discovered_by_their_manifests() {
        let dir = models_dir(&[("b", manifest("zeta")), ("a", manifest("alpha"))]);
        std::fs::create_dir_all(dir.join("not-a-model")).unwrap();
        let found = discover(&dir).unwrap();
        let ids: Vec<&str> = found
            .iter()
            .map(|(_, manifest)| manifest.id.as_str())
            .collect();
        assert_eq!(ids, ["alpha", "zeta"]);
        assert_eq!(found[0].0, dir.join("a"));
    }

    #[test]
    fn bad_model_directories_are_refused_with_the_reason() {
        let cases = [
            (vec![], "no model under"),
            (
                vec![("a", manifest("same")), ("b", manifest("same"))],
                "two models",
            ),
            (vec![("a", manifest("Not Valid"))], "lowercase"),
            (vec![("a", "{\"id\": \"x\"}".to_owned())], "missing field"),
            (
                vec![("a", manifest("x").replace("\"mean\"", "\"cls\""))],
                "pooling",
            ),
            (
                vec![(
                    "a",
                    manifest("x").replace("\"mean\"", "\"mean\", \"max_batch\": 0"),
                )],
                "max_batch",
            ),
        ];
        for (models, expected) in cases {
            let error = format!("{:#}", discover(&models_dir(&models)).unwrap_err());
            assert!(error.contains(expected), "{expected:?} not in {error:?}");
        }
        let missing = discover(Path::new("/nonexistent/models")).unwrap_err();
        assert!(format!("{missing:#}").contains("fetch-ai-assets"));
    }
}
