#!/usr/bin/env python3
"""Reference runs of the real BigARTM 0.9.2, for tests and benchmarks.

Runs inside .venv-ref (scripts/setup_reference.sh), never imports artm_compose, and is invoked as a
subprocess:

  .venv-ref/bin/python scripts/bigartm_reference.py vectorize (--uci DOCWORD VOCAB | --vw FILE) \
      --target DIR [--batch-size 1000]
  .venv-ref/bin/python scripts/bigartm_reference.py dictionary --batches DIR --filters JSON --json OUT.json
  .venv-ref/bin/python scripts/bigartm_reference.py fit --batches DIR [--vocab DIR/vocab.txt] \
      --topics T --passes N [--inner 10] [--processors 1] [--seed 1] [--init-phi FILE] \
      --json OUT.json [--npz OUT.npz]
  .venv-ref/bin/python scripts/bigartm_reference.py transform --batches DIR [--vocab VOCAB] --phi FILE \
      [--inner 10] [--processors 1] --npz OUT.npz
  .venv-ref/bin/python scripts/bigartm_reference.py fit-online --batches DIR [--vocab VOCAB] --phi FILE \
      --passes N [--inner 10] [--update-every 1] [--tau0 1024] [--kappa 0.7] [--groups JSON] --json OUT.json

``transform`` (with the theta regularizers and class weights of ``--regularizers``/``--class-ids``,
as ``fit`` takes them) puts the given phi (``--phi``, read as ``--init-phi`` is; ``--vocab``: the vocabulary
phi was trained with, default ``vocab.txt`` of the batches) into a model and runs ``ARTM.transform``
on the batches; the npz holds ``theta`` (documents x topics, the transpose of the
DataFrame BigARTM returns), ``items`` (its columns, the item ids), ``titles`` and ``seconds``.

``fit-online`` starts from the given phi (in both p_wt and n_wt: BigARTM's ``initialize`` fills its
n_wt exactly as its p_wt, and the first online merge blends into it) and calls ``fit_online`` once per
pass over the batches in file-name order with ``update_every``, ``tau0``, ``kappa``; with ``--groups``
(a JSON list of updates, each a list of batch file names) the batches go in that order and the updates
are passed explicitly (``update_after``, ``apply_weight`` = (tau0 + k) ** -kappa with k counted over all
passes as ``fit_online`` counts it, ``decay_weight`` = 1 - apply). The JSON holds ``perplexity`` per pass
(exp(-sum raw / sum normalizer) over the pass's updates) and per update ``raw``, ``normalizer``, ``value``.

``dictionary`` gathers BigARTM's dictionary from the batches and applies ``Dictionary.filter`` once per
mapping of the JSON list ``--filters`` (its keyword arguments, in order); the JSON written holds
``num_items`` and the kept ``entries`` as [class id, token, df] in the dictionary's order.

``fit`` runs ``fit_offline``, one collection pass per call so every pass is timed, with the
regularizers of ``--regularizers`` (JSON list of mappings: ``type``, an ``artm`` class name, plus its
keyword arguments) and the class weights of ``--class-ids`` (JSON mapping, ``artm.ARTM(class_ids=)``).
The JSON holds ``perplexity`` (and ``perplexity_by_class`` for weighted classes), ``sparsity_phi``,
``sparsity_theta``, ``kernel_size``/``kernel_purity``/``kernel_contrast`` (TopicKernelScore, threshold
0.1) and ``seconds`` per pass, ``top_tokens`` at the end, plus the collection's token weight;
the npz holds ``phi`` (final), ``init_phi`` (the phi pass 1 starts from), ``tokens``, ``class_ids``
and ``topics``, rows in the vocabulary file's order.

Perplexity: BigARTM's PerplexityScore is accumulated by the processors while they process the
batches of a pass, with the p_wt matrix that pass uses (the phi from before the pass: the initial
phi for pass 1) and each document's theta after its last inner iteration; ``value`` =
exp(-sum n_dw ln p_dw / sum n_dw). No dictionary is given to the score, so a p_dw of zero would fall
back to the document's unigram model (BigARTM's UnigramDocumentModel); ``zero_words`` counts them
and is reported per pass.

Initial phi: BigARTM draws it in ``initialize()`` from its own generator seeded with ``--seed``;
``init_phi`` in the npz is that draw, exported before any pass. With ``--init-phi`` the drawn
values are overwritten, through the array ``master.attach_model(model_pwt)`` returns, by the given
phi: an ``.npz`` with ``phi`` (tokens x topics) and ``tokens`` (optionally ``class_ids``), or a CSV
with tokens in the first column and one column per topic (as ``get_phi().to_csv()`` writes it).
Rows are matched by token; a missing token is an error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

DEFAULT_CLASS = "@default_class"


def fail(message: str) -> None:
    """Exit with a one-line error on stderr."""
    print(f"bigartm_reference: error: {message}", file=sys.stderr)
    sys.exit(2)


def read_vocab(path: Path) -> list[tuple[str, str]]:
    """(class id, token) per line of a vocabulary file (``token`` or ``token class_id`` lines)."""
    keys = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        fields = line.split()
        if not fields or len(fields) > 2:
            fail(f"vocabulary {path} line {number}: expected 'token' or 'token class_id', got {line!r}")
        keys.append((fields[1] if len(fields) == 2 else DEFAULT_CLASS, fields[0]))
    return keys


def load_phi_file(path: Path) -> tuple[list[tuple[str, str]], np.ndarray]:
    """Keys (class id, token) and rows of a phi file: our npz export or a pandas CSV."""
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as data:
            tokens = [str(t) for t in data["tokens"]]
            classes = [str(c) for c in data["class_ids"]] if "class_ids" in data else [DEFAULT_CLASS] * len(tokens)
            return list(zip(classes, tokens)), np.asarray(data["phi"], dtype=np.float32)
    import pandas

    frame = pandas.read_csv(path, index_col=0, keep_default_na=False)
    return [(DEFAULT_CLASS, str(t)) for t in frame.index], frame.to_numpy(dtype=np.float32)


def rows_in(keys: list[tuple[str, str]], order: list[tuple[str, str]], what: str) -> np.ndarray:
    """For every key of ``order``, its row in ``keys``; a key missing from ``keys`` is fatal."""
    position = {key: row for row, key in enumerate(keys)}
    missing = [key for key in order if key not in position]
    if missing:
        fail(f"{what} lacks {len(missing)} tokens, e.g. {missing[0][1]!r} (class {missing[0][0]})")
    return np.array([position[key] for key in order], dtype=np.int64)


def cmd_vectorize(args: argparse.Namespace) -> None:
    import artm

    target = Path(args.target).resolve()
    if args.uci:
        docword, vocab = (Path(p).resolve() for p in args.uci)
        staging = Path.cwd() / "uci"  # the temporary working directory main() sets up
        staging.mkdir()
        # BatchVectorizer wants <dir>/docword.<name>.txt and <dir>/vocab.<name>.txt.
        (staging / "docword.collection.txt").symlink_to(docword)
        (staging / "vocab.collection.txt").symlink_to(vocab)
        artm.BatchVectorizer(data_path=str(staging), collection_name="collection", data_format="bow_uci",
                             target_folder=str(target), batch_size=args.batch_size)
    else:
        artm.BatchVectorizer(data_path=str(Path(args.vw).resolve()), data_format="vowpal_wabbit",
                             target_folder=str(target), batch_size=args.batch_size)
    print(json.dumps({"target": str(target), "batches": sorted(p.name for p in target.glob("*.batch"))}))


def cmd_dictionary(args: argparse.Namespace) -> None:
    import artm

    dictionary = artm.Dictionary()
    dictionary.gather(data_path=args.batches)
    for arguments in json.loads(args.filters):
        dictionary.filter(**arguments)
    text = Path("dictionary.txt")  # in the temporary working directory main() sets up
    dictionary.save_text(str(text))
    lines = text.read_text(encoding="utf-8").splitlines()
    num_items = int(lines[0].split("num_items:")[1])  # "name: ... num_items: N", then the column names
    entries = []
    for line in lines[2:]:
        token, class_id, _value, _tf, df = (field.strip() for field in line.rsplit(",", 4))
        entries.append([class_id, token, float(df)])
    Path(args.json).write_text(json.dumps({"num_items": num_items, "entries": entries}, indent=1) + "\n")


def cmd_fit(args: argparse.Namespace) -> None:
    import artm

    batches = Path(args.batches).resolve()
    vocab_path = Path(args.vocab).resolve() if args.vocab else batches / "vocab.txt"
    vocab = read_vocab(vocab_path)
    init_file = load_phi_file(Path(args.init_phi).resolve()) if args.init_phi else None

    vectorizer = artm.BatchVectorizer(data_path=str(batches), data_format="batches")
    dictionary = artm.Dictionary()
    dictionary.gather(data_path=str(batches), vocab_file_path=str(vocab_path))
    class_ids = json.loads(args.class_ids) if args.class_ids else None
    model = artm.ARTM(num_topics=args.topics, num_processors=args.processors, class_ids=class_ids,
                      num_document_passes=args.inner, seed=args.seed, show_progress_bars=False)
    model.scores.add(artm.PerplexityScore(name="perplexity"))
    classes = list(dict.fromkeys(c for c, _ in vocab))
    for class_id in (class_ids or {}):
        model.scores.add(artm.PerplexityScore(name=f"perplexity {class_id}", class_ids=[class_id]))
    model.scores.add(artm.SparsityPhiScore(name="sparsity_phi"))
    model.scores.add(artm.SparsityThetaScore(name="sparsity_theta"))
    model.scores.add(artm.TopicKernelScore(name="kernel", probability_mass_threshold=0.1))
    model.scores.add(artm.TopTokensScore(name="top_tokens", num_tokens=10))
    add_regularizers(model, args.regularizers)
    model.initialize(dictionary)

    info, pwt = model.master.attach_model(model.model_pwt)
    model_keys = list(zip(info.class_id, info.token))
    if len(set(model_keys)) != len(vocab) or set(model_keys) != set(vocab):
        fail(f"BigARTM's dictionary ({len(model_keys)} tokens) differs from {vocab_path} ({len(vocab)} lines)")
    to_model = rows_in(model_keys, vocab, "BigARTM's model")
    if init_file is not None:
        keys, values = init_file
        if values.shape[1] != args.topics:
            fail(f"{args.init_phi} has {values.shape[1]} topics, expected {args.topics}")
        pwt[to_model] = values[rows_in(keys, vocab, str(args.init_phi))]
    init_phi = pwt[to_model].copy()

    perplexity, seconds, zero_words = [], [], []
    by_class = {c: [] for c in (class_ids or {})}
    figures = {"sparsity_phi": [], "sparsity_theta": [], "kernel_size": [], "kernel_purity": [], "kernel_contrast": []}
    for _ in range(args.passes):
        start = time.perf_counter()
        model.fit_offline(vectorizer, num_collection_passes=1)
        seconds.append(time.perf_counter() - start)
        score = model.get_score("perplexity")
        perplexity.append(float(score.value))
        zero_words.append(int(score.zero_words))
        for class_id, values in by_class.items():
            values.append(float(model.get_score(f"perplexity {class_id}").value))
        figures["sparsity_phi"].append(float(model.get_score("sparsity_phi").value))
        figures["sparsity_theta"].append(float(model.get_score("sparsity_theta").value))
        kernel = model.get_score("kernel")
        figures["kernel_size"].append(float(kernel.average_kernel_size))
        figures["kernel_purity"].append(float(kernel.average_kernel_purity))
        figures["kernel_contrast"].append(float(kernel.average_kernel_contrast))
    normalizer = float(model.get_score("perplexity").normalizer) if args.passes else None

    final_info, dense = model.master.get_phi_matrix(model=model.model_pwt)
    final_keys = list(zip(final_info.class_id, final_info.token))
    phi = np.asarray(dense, dtype=np.float32)[rows_in(final_keys, vocab, "BigARTM's final phi")]
    topics = list(final_info.topic_name)
    result = {
        "library_version": artm.version(),
        "topics": list(topics),
        "passes": args.passes,
        "inner_iterations": args.inner,
        "processors": args.processors,
        "seed": args.seed,
        "init_phi_from": str(args.init_phi) if args.init_phi else "bigartm-random",
        "batches": vectorizer.num_batches,
        "vocab_size": len(vocab),
        "token_weight": normalizer,
        "perplexity": perplexity,
        "perplexity_by_class": by_class,
        **figures,
        "top_tokens": ([list(model.score_tracker["top_tokens"].last_tokens[t]) for t in topics]
                       if args.passes else []),
        "seconds": seconds,
        "zero_words": zero_words,
        "classes": classes,
    }
    Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    if args.npz:
        np.savez(args.npz, phi=phi, init_phi=init_phi, tokens=np.array([k[1] for k in vocab]),
                 class_ids=np.array([k[0] for k in vocab]), topics=np.array(list(topics)))


def add_regularizers(model, specs_json: str) -> None:
    """The regularizers of a JSON list of mappings: ``type`` (an ``artm`` class name) plus keyword arguments."""
    import artm

    for number, spec in enumerate(json.loads(specs_json)):
        spec = dict(spec)
        kind = getattr(artm, spec.pop("type"))
        model.regularizers.add(kind(name=spec.pop("name", f"regularizer {number}"), **spec))


def model_with_phi(batches: Path, vocab_path: Path, phi_file: Path, inner: int, processors: int,
                   regularizers: str = "[]", class_ids: str | None = None):
    """An initialised ARTM model whose p_wt is the phi of ``phi_file``, rows matched by token (PLSA unless
    ``regularizers``/``class_ids``, JSON as ``fit`` takes them)."""
    import artm

    vocab = read_vocab(vocab_path)
    keys, values = load_phi_file(phi_file)
    dictionary = artm.Dictionary()
    dictionary.gather(data_path=str(batches), vocab_file_path=str(vocab_path))
    model = artm.ARTM(num_topics=values.shape[1], num_processors=processors, num_document_passes=inner,
                      class_ids=json.loads(class_ids) if class_ids else None, show_progress_bars=False)
    add_regularizers(model, regularizers)
    model.initialize(dictionary)
    # The arrays attach_model returns own the matrices' memory from then on: keep them as long as the model.
    model.attached_matrices = []
    for name in (model.model_pwt, model.model_nwt):  # initialize() fills both alike
        info, matrix = model.master.attach_model(name)
        model.attached_matrices.append(matrix)
        model_keys = list(zip(info.class_id, info.token))
        matrix[rows_in(model_keys, vocab, "BigARTM's model")] = values[rows_in(keys, vocab, str(phi_file))]
    return model


def cmd_fit_online(args: argparse.Namespace) -> None:
    import artm

    batches = Path(args.batches).resolve()
    vocab_path = Path(args.vocab).resolve() if args.vocab else batches / "vocab.txt"
    model = model_with_phi(batches, vocab_path, Path(args.phi), args.inner, args.processors, args.regularizers,
                           args.class_ids)
    model.scores.add(artm.PerplexityScore(name="perplexity"))
    groups = json.loads(args.groups) if args.groups else None
    names = [name for group in groups for name in group] if groups else sorted(p.name for p in batches.glob("*.batch"))
    vectorizer = artm.BatchVectorizer(data_path=str(batches), data_format="batches", batches=names)
    perplexity, seconds, count = [], [], 0
    for _ in range(args.passes):
        done = len(model.score_tracker["perplexity"].value) if "perplexity" in model.score_tracker else 0
        start = time.perf_counter()
        if groups is None:
            model.fit_online(vectorizer, update_every=args.update_every, tau0=args.tau0, kappa=args.kappa)
        else:
            after = list(np.cumsum([len(group) for group in groups]))
            apply = [(args.tau0 + count + k) ** -args.kappa for k in range(1, len(groups) + 1)]
            count += len(groups)
            model.fit_online(vectorizer, update_after=[int(a) for a in after], apply_weight=apply,
                             decay_weight=[1.0 - a for a in apply])
        seconds.append(time.perf_counter() - start)
        tracker = model.score_tracker["perplexity"]
        raw, normalizer = np.array(tracker.raw[done:]), np.array(tracker.normalizer[done:])
        perplexity.append(float(np.exp(-raw.sum() / normalizer.sum())))
    tracker = model.score_tracker["perplexity"]
    result = {"library_version": artm.version(), "passes": args.passes, "update_every": args.update_every,
              "tau0": args.tau0, "kappa": args.kappa, "batches": names, "perplexity": perplexity,
              "seconds": seconds, "updates": [{"raw": float(r), "normalizer": float(n), "value": float(v)}
                                              for r, n, v in zip(tracker.raw, tracker.normalizer, tracker.value)]}
    Path(args.json).write_text(json.dumps(result, indent=2) + "\n")


def cmd_transform(args: argparse.Namespace) -> None:
    import artm

    batches = Path(args.batches).resolve()
    vocab_path = Path(args.vocab).resolve() if args.vocab else batches / "vocab.txt"
    model = model_with_phi(batches, vocab_path, Path(args.phi), args.inner, args.processors, args.regularizers,
                           args.class_ids)
    vectorizer = artm.BatchVectorizer(data_path=str(batches), data_format="batches")
    start = time.perf_counter()
    frame = model.transform(vectorizer)
    seconds = time.perf_counter() - start
    model.theta_columns_naming = "title"
    titles = [str(t) for t in model.transform(vectorizer).columns]
    np.savez(args.npz, theta=frame.to_numpy(dtype=np.float32).T, items=np.asarray(frame.columns, dtype=np.int64),
             titles=np.asarray(titles, dtype=str), topics=np.asarray([str(t) for t in frame.index], dtype=str),
             seconds=np.asarray(seconds))


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    vectorize = commands.add_parser("vectorize", help="BatchVectorizer: UCI or VW -> batches")
    source = vectorize.add_mutually_exclusive_group(required=True)
    source.add_argument("--uci", nargs=2, metavar=("DOCWORD", "VOCAB"))
    source.add_argument("--vw", metavar="FILE")
    vectorize.add_argument("--target", required=True)
    vectorize.add_argument("--batch-size", type=int, default=1000)
    dictionary = commands.add_parser("dictionary", help="gather a dictionary and filter it")
    dictionary.add_argument("--batches", required=True)
    dictionary.add_argument("--filters", default="[]", help="JSON list of Dictionary.filter keyword arguments")
    dictionary.add_argument("--json", required=True)
    fit = commands.add_parser("fit", help="PLSA fit_offline, one timed pass at a time")
    fit.add_argument("--batches", required=True)
    fit.add_argument("--vocab")
    fit.add_argument("--topics", type=int, required=True)
    fit.add_argument("--passes", type=int, required=True)
    fit.add_argument("--inner", type=int, default=10, help="num_document_passes")
    fit.add_argument("--processors", type=int, default=1)
    fit.add_argument("--seed", type=int, default=1)
    fit.add_argument("--init-phi")
    fit.add_argument("--class-ids", help="JSON mapping class id -> weight, as artm.ARTM(class_ids=...)")
    fit.add_argument("--regularizers", default="[]",
                     help="JSON list of regularizers: {type: artm class name, tau, topic_names, ...}")
    fit.add_argument("--json", required=True)
    fit.add_argument("--npz")
    transform = commands.add_parser("transform", help="ARTM.transform with a given phi")
    transform.add_argument("--batches", required=True)
    transform.add_argument("--vocab")
    transform.add_argument("--phi", required=True)
    transform.add_argument("--inner", type=int, default=10, help="num_document_passes")
    transform.add_argument("--processors", type=int, default=1)
    transform.add_argument("--class-ids", help="JSON mapping class id -> weight, as artm.ARTM(class_ids=...)")
    transform.add_argument("--regularizers", default="[]", help="JSON list of regularizers, as fit takes them")
    transform.add_argument("--npz", required=True)
    online = commands.add_parser("fit-online", help="fit_online from a given phi, one call per pass")
    online.add_argument("--batches", required=True)
    online.add_argument("--vocab")
    online.add_argument("--phi", required=True)
    online.add_argument("--passes", type=int, required=True)
    online.add_argument("--inner", type=int, default=10, help="num_document_passes")
    online.add_argument("--processors", type=int, default=1)
    online.add_argument("--update-every", type=int, default=1)
    online.add_argument("--tau0", type=float, default=1024.0)
    online.add_argument("--kappa", type=float, default=0.7)
    online.add_argument("--groups", help="JSON list of updates, each a list of batch file names")
    online.add_argument("--class-ids", help="JSON mapping class id -> weight, as artm.ARTM(class_ids=...)")
    online.add_argument("--regularizers", default="[]", help="JSON list of regularizers, as fit takes them")
    online.add_argument("--json", required=True)
    return parser.parse_args(argv)


def main(argv: list[str]) -> None:
    args = parse_args(argv)
    for name in ("json", "npz", "batches", "vocab", "init_phi", "target", "vw", "phi"):
        if getattr(args, name, None):
            setattr(args, name, str(Path(getattr(args, name)).resolve()))
    if getattr(args, "uci", None):
        args.uci = [str(Path(p).resolve()) for p in args.uci]
    # libartm writes its glog files into the working directory: keep them out of the caller's.
    with tempfile.TemporaryDirectory(prefix="bigartm-logs-") as logs:
        os.chdir(logs)
        {"vectorize": cmd_vectorize, "dictionary": cmd_dictionary, "fit": cmd_fit,
         "transform": cmd_transform, "fit-online": cmd_fit_online}[args.command](args)


if __name__ == "__main__":
    main(sys.argv[1:])
