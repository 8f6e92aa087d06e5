"""Python onnxruntime embedding the held-out tickets one text at a time: the same model,
tokenizer, text prefix, thread count and pooling as svc-ai. Run by `cargo bench -p svc-ai --bench engine`
(through `scripts/bench.sh ai-engine`), which passes the model's directory, the number of
threads and how many seconds to run; prints one JSON line with texts per second."""

import json
import pathlib
import sys
import time

import numpy as np
import onnxruntime
from tokenizers import Tokenizer


def main() -> None:
    model_dir, threads, seconds, tickets = (
        pathlib.Path(sys.argv[1]),
        int(sys.argv[2]),
        float(sys.argv[3]),
        pathlib.Path(sys.argv[4]),
    )
    manifest = json.loads((model_dir / "model.json").read_text())
    tokenizer = Tokenizer.from_file(str(model_dir / manifest["tokenizer_file"]))
    tokenizer.no_padding()
    tokenizer.enable_truncation(manifest["max_input_tokens"])
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = onnxruntime.InferenceSession(
        str(model_dir / manifest["model_file"]), options, providers=["CPUExecutionProvider"]
    )
    inputs = {i.name for i in session.get_inputs()}
    texts = []
    for line in tickets.read_text().splitlines():
        ticket = json.loads(line)
        texts.append(f"{ticket['subject'].strip()}\n{ticket['body']}")

    prefix = manifest.get("text_prefix", "")

    def embed(text: str) -> np.ndarray:
        encoding = tokenizer.encode(prefix + text)
        ids = np.array([encoding.ids], dtype=np.int64)
        mask = np.ones_like(ids)
        feed = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in inputs:
            feed["token_type_ids"] = np.zeros_like(ids)
        hidden = session.run([manifest["output"]], feed)[0][0]
        vector = hidden.mean(axis=0)
        return vector / np.linalg.norm(vector)

    for text in texts[:10]:
        embed(text)
    embedded = 0
    cpu = time.process_time()
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        embed(texts[embedded % len(texts)])
        embedded += 1
    wall = time.perf_counter() - started
    cpu = time.process_time() - cpu
    print(
        json.dumps(
            {
                "texts_per_second": embedded / wall,
                "cpu_ms_per_text": cpu * 1000 / embedded,
                "onnxruntime": onnxruntime.__version__,
            }
        )
    )


if __name__ == "__main__":
    main()
