#!/usr/bin/env python3
"""Train a topic model on a local artm-compose cluster, look at it as in BigARTM, then hand it to BigARTM.

    python examples/bigartm_style.py CORPUS_DIR [--topics 20] [--passes 10] [--nodes 2] [--base-port 7000]

CORPUS_DIR holds BigARTM batches and vocab.txt (e.g. from `artm-compose data debian --out CORPUS_DIR`).
Each step names the BigARTM 0.9.2 call it stands for.
"""

import argparse
import shutil

from artm_compose.api import Cluster

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("corpus")
parser.add_argument("--topics", type=int, default=20)
parser.add_argument("--passes", type=int, default=10)
parser.add_argument("--nodes", type=int, default=2)
parser.add_argument("--base-port", type=int, default=7000)
parser.add_argument("--state-dir", default="state")
parser.add_argument("--export", default="model-bigartm")
args = parser.parse_args()

# model = artm.ARTM(num_topics=20, num_document_passes=10, seed=0)
cluster = Cluster.from_config(runtime="local", nodes=args.nodes, executors_per_node=2, base_port=args.base_port,
                              data_dir=args.corpus, topics=args.topics, iterations=args.passes,
                              inner_iterations=10, seed=0, state_dir=args.state_dir)
try:
    # model.fit_offline(batch_vectorizer, num_collection_passes=10)
    cluster.up(detach=False)

    # model.score_tracker["PerplexityScore"].value
    perplexity = cluster.score_tracker["perplexity"]
    print("perplexity per pass:", " ".join(f"{value:.1f}" for value in perplexity.value))
    print("last perplexity:", round(perplexity.last_value, 2))

    # model.get_phi(): a pandas DataFrame, tokens x topics ((class_id, token) rows with several modalities)
    phi = cluster.get_phi()
    print("phi:", phi.shape[0], "tokens x", phi.shape[1], "topics, index", list(phi.index.names))
    for topic in phi.columns:
        print(f"{topic} top tokens:", " ".join(phi[topic].nlargest(8).index.get_level_values("token")))

    # model.transform(batch_vectorizer) or model.get_theta(): documents x topics here (BigARTM's frame is its .T)
    theta = cluster.get_theta()
    print("theta:", theta.shape[0], "documents x", theta.shape[1], "topics, index", theta.index.name)
    print("first document's main topic:", theta.iloc[0].idxmax())

    # model.dump_artm_model(path): then artm.load_artm_model(path) goes on training on one machine
    shutil.rmtree(args.export, ignore_errors=True)
    print("BigARTM model in", cluster.export(args.export, format="bigartm"))
finally:
    cluster.down()  # the Redis Cluster and every process of this state directory
