#!/usr/bin/env python3
"""Load a model exported with ``artm-compose export --format bigartm`` into the real BigARTM 0.9.2 and go on
training it, for tests. Runs inside .venv-ref and never imports artm_compose:

  .venv-ref/bin/python scripts/bigartm_continue.py --model DIR --batches DIR --passes N \
      --json OUT.json --npz OUT.npz

``artm.load_artm_model(DIR)`` loads the model; its phi as loaded goes to the npz (``loaded_phi``, with
``tokens`` and ``topics`` in BigARTM's order), then ``fit_offline`` runs N passes over the batches with a
PerplexityScore, and the phi after them goes to the npz as ``phi``. The JSON holds the perplexity per pass
and what the loaded model says about itself (topic names, class ids, document passes, seed).
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--batches", required=True)
    parser.add_argument("--passes", type=int, default=1)
    parser.add_argument("--json", required=True)
    parser.add_argument("--npz", required=True)
    args = parser.parse_args()

    import artm

    model = artm.load_artm_model(args.model)
    loaded = model.get_phi()
    model.scores.add(artm.PerplexityScore(name="perplexity"))
    batches = artm.BatchVectorizer(data_path=args.batches, data_format="batches")
    model.fit_offline(batch_vectorizer=batches, num_collection_passes=args.passes)
    fitted = model.get_phi().loc[loaded.index, loaded.columns]
    np.savez(args.npz, loaded_phi=loaded.values.astype(np.float32), phi=fitted.values.astype(np.float32),
             tokens=np.asarray([str(t) for t in loaded.index]), topics=np.asarray(list(loaded.columns)))
    with open(args.json, "w") as handle:
        json.dump({"perplexity": [float(v) for v in model.score_tracker["perplexity"].value],
                   "topic_names": list(model.topic_names), "class_ids": dict(model.class_ids),
                   "num_document_passes": model.num_document_passes, "seed": model.seed,
                   "library_version": model.library_version}, handle)


if __name__ == "__main__":
    try:
        main()
    except Exception as error:  # noqa: BLE001 - one line for the test's assertion message
        print(f"bigartm_continue: error: {type(error).__name__}: {error}", file=sys.stderr)
        sys.exit(2)
