"""``artm-compose data ...``: prepare batches from UCI / Vowpal Wabbit / Debian, and describe a batch directory."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import click

from artm_compose.data.batches import list_batches, read_batch
from artm_compose.data.collection import VOCAB_FILE, CollectionStats, read_manifest
from artm_compose.data.debian import DEFAULT_FILTER, CorpusOptions, prepare_debian
from artm_compose.data.dictionary_filter import KINDS, DictionaryFilter, parse_filter
from artm_compose.data.prepare import prepare_uci, prepare_vw
from artm_compose.data.synth import PHI_FILE, SynthOptions, synthesize
from artm_compose.data.vocab import batch_in_vocab, read_vocab
from artm_compose.errors import ArtmComposeError


def _print_stats(stats: CollectionStats, out: Path) -> None:
    click.echo(
        f"{out}: {stats.documents} documents in {stats.batches} batches, {stats.vocab_size} tokens, "
        f"{stats.nonzeros} non-zeros, token weight {stats.token_weight:.0f}, "
        f"{stats.skipped_empty_documents} empty documents skipped"
    )


_Command = TypeVar("_Command", bound=Callable[..., None])

_FILTER_HELP = {
    "min_df": "Keep tokens in at least N documents.",
    "max_df": "Keep tokens in fewer than N documents.",
    "min_df_rate": "Keep tokens with df >= RATE x documents.",
    "max_df_rate": "Keep tokens with df < RATE x documents.",
    "max_dictionary_size": "Keep at most N tokens, by df (ties at the cut go); without class id: the whole "
                           "dictionary, applied last.",
}
_FILTER_EPILOG = (
    "Dictionary filters have the meanings of BigARTM's artm.Dictionary.filter (df: documents holding the "
    "token). Each takes VALUE for every modality or CLASS_ID=VALUE for one (e.g. --min-df 5 --min-df "
    "@tag=2: @tag tokens need 2 documents, the others 5), and is repeatable. Filtered tokens leave the "
    "vocabulary and the batches; documents left empty are skipped and counted."
)


def filter_options(command: _Command) -> _Command:
    """Add --min-df, --max-df, --min-df-rate, --max-df-rate and --max-dictionary-size (repeatable)."""
    for kind in reversed(KINDS):
        metavar = "[CLASS_ID=]N" if kind in ("min_df", "max_df", "max_dictionary_size") else "[CLASS_ID=]RATE"
        command = click.option("--" + kind.replace("_", "-"), kind, multiple=True, metavar=metavar,
                               help=_FILTER_HELP[kind])(command)
    return command


def _dictionary_filter(options: dict[str, tuple[str, ...]]) -> DictionaryFilter:
    return parse_filter({kind: options.pop(kind) for kind in KINDS})


@click.group("data")
def data_group() -> None:
    """Prepare and inspect BigARTM batch directories."""


@data_group.command("prepare", epilog=_FILTER_EPILOG)
@click.option("--uci", nargs=2, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              metavar="DOCWORD VOCAB", help="UCI Bag-of-Words: docword.*.txt and vocab.*.txt.")
@click.option("--vw", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Vowpal Wabbit text file, one document per line.")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Output directory (must not exist or be empty): *.batch, vocab.txt, corpus.json.")
@click.option("--batch-size", default=1000, show_default=True, type=click.IntRange(min=1),
              help="Documents per batch.")
@filter_options
def prepare_command(uci: tuple[Path, Path] | None, vw: Path | None, out: Path, batch_size: int,
                    **filters: tuple[str, ...]) -> None:
    """Convert a UCI Bag-of-Words or Vowpal Wabbit collection into batches + vocabulary.

    Vowpal Wabbit lines carry modalities: 'doc |@default_class tok tok:2 |@tag x y' gives x and y the
    class id @tag (a bare '|' switches back to @default_class). vocab.txt lists 'token class_id' per
    line, the class id left out for @default_class (BigARTM's UCI convention).
    """
    if (uci is None) == (vw is None):
        raise click.UsageError("give exactly one of --uci DOCWORD VOCAB or --vw FILE")
    dictionary_filter = _dictionary_filter(filters)
    stats = (prepare_uci(uci[0], uci[1], out, batch_size, dictionary_filter) if uci
             else prepare_vw(vw, out, batch_size, dictionary_filter))
    _print_stats(stats, out)


@data_group.command("debian", epilog=_FILTER_EPILOG + " Default here: --min-df 5 --max-df-rate 0.5; a value "
                    "given for the same scope replaces it.")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Output directory; reused as is when it already holds this corpus.")
@click.option("--max-docs", type=click.IntRange(min=1), default=None,
              help="Keep only the first N packages (by name), for small fast corpora.")
@click.option("--batch-size", default=1000, show_default=True, type=click.IntRange(min=1),
              help="Documents per batch.")
@click.option("--modalities", is_flag=True,
              help="Add @section (the package's Section) and @tag (its debtags, from the Packages index; "
                   "'facet::value' is written facet__value, every ':' as '_').")
@filter_options
def debian_command(out: Path, max_docs: int | None, batch_size: int, modalities: bool,
                   **filters: tuple[str, ...]) -> None:
    """Fetch Debian's long package descriptions (apt Translation-en) and write them as batches."""
    dictionary_filter = DEFAULT_FILTER.merged(_dictionary_filter(filters))
    options = CorpusOptions(max_docs=max_docs, batch_size=batch_size, dictionary_filter=dictionary_filter,
                            modalities=modalities)
    stats = prepare_debian(out, options)
    _print_stats(stats, out)


@data_group.command("synth")
@click.option("--documents", required=True, type=click.IntRange(min=1), help="Number of documents.")
@click.option("--topics", required=True, type=click.IntRange(min=1), help="Number of generating topics.")
@click.option("--vocab", required=True, type=click.IntRange(min=1), help="Number of words (w000000, ...).")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Output directory (must not exist or be empty).")
@click.option("--mean-length", default=100.0, show_default=True, type=float,
              help="Mean document length in tokens (lengths are heavy-tailed: Pareto II of shape 2).")
@click.option("--alpha", default=0.1, show_default=True, type=float, help="Dirichlet prior of each document's topics.")
@click.option("--beta", default=0.1, show_default=True, type=float, help="Dirichlet prior of each topic's words.")
@click.option("--seed", default=1, show_default=True, type=int, help="Random seed: same arguments, same corpus.")
@click.option("--batch-size", default=1000, show_default=True, type=click.IntRange(min=1),
              help="Documents per batch.")
def synth_command(documents: int, topics: int, vocab: int, out: Path, mean_length: float, alpha: float,
                  beta: float, seed: int, batch_size: int) -> None:
    """Sample a corpus from an LDA-like model, batch by batch, with the generating phi.

    Writes the batches, vocab.txt, corpus.json and generating_phi.npz (phi: words x topics, float32,
    the distribution the tokens were drawn from; the layout --init-phi and export use).
    """
    options = SynthOptions(documents=documents, topics=topics, vocab=vocab, mean_length=mean_length, alpha=alpha,
                           beta=beta, seed=seed, batch_size=batch_size)
    stats = synthesize(out, options)
    _print_stats(stats, out)
    click.echo(f"{out / PHI_FILE}: the generating phi ({vocab} words x {topics} topics)")


def describe(directory: Path) -> dict[str, object]:
    """Batches, items, non-zeros and token weight of a batch directory, and how its tokens fit vocab.txt."""
    paths = list_batches(directory)
    vocab_path = directory / VOCAB_FILE
    vocabulary = read_vocab(vocab_path) if vocab_path.is_file() else None
    items = nonzeros = missing_entries = 0
    token_weight = 0.0
    distinct: set[tuple[str, str]] = set()
    missing: set[str] = set()
    for path in paths:
        batch = read_batch(path)
        items += batch.n_items
        nonzeros += batch.nnz
        token_weight += batch.token_weight
        distinct.update(zip(batch.class_ids, batch.tokens))
        if vocabulary is not None:
            mapped = batch_in_vocab(batch, vocabulary, skip_missing=True)
            missing.update(mapped.skipped_tokens)
            missing_entries += mapped.skipped_entries
    info: dict[str, object] = {
        "directory": str(directory),
        "batches": len(paths),
        "items": items,
        "nonzeros": nonzeros,
        "token_weight": token_weight,
        "distinct_tokens": len(distinct),
        "vocab": str(vocab_path) if vocabulary is not None else None,
        "vocab_size": len(vocabulary) if vocabulary is not None else None,
        "tokens_missing_from_vocab": len(missing) if vocabulary is not None else None,
        "entries_missing_from_vocab": missing_entries if vocabulary is not None else None,
    }
    manifest = read_manifest(directory)
    if manifest is not None:
        info["manifest"] = manifest
    return info


@data_group.command("info")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
def info_command(directory: Path, as_json: bool) -> None:
    """Describe a batch directory: batches, items, non-zeros, token weight, vocabulary fit."""
    info = describe(directory)
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    for key, value in info.items():
        if key != "manifest" and value is not None:
            click.echo(f"{key}: {value:.0f}" if isinstance(value, float) else f"{key}: {value}")


def main() -> None:
    """Run the group standalone (``python -m artm_compose.data.commands``), errors as one line."""
    try:
        data_group.main(standalone_mode=False)
    except click.ClickException as error:
        error.show()
        sys.exit(error.exit_code)
    except click.exceptions.Abort:
        sys.exit(1)
    except ArtmComposeError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
