"""``artm-compose data ...``: prepare batches from UCI / Vowpal Wabbit / Debian, and describe a batch directory."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from artm_compose.data.batches import list_batches, read_batch
from artm_compose.data.collection import VOCAB_FILE, CollectionStats, read_manifest
from artm_compose.data.debian import CorpusOptions, prepare_debian
from artm_compose.data.prepare import prepare_uci, prepare_vw
from artm_compose.data.vocab import batch_in_vocab, read_vocab
from artm_compose.errors import ArtmComposeError


def _print_stats(stats: CollectionStats, out: Path) -> None:
    click.echo(
        f"{out}: {stats.documents} documents in {stats.batches} batches, {stats.vocab_size} tokens, "
        f"{stats.nonzeros} non-zeros, token weight {stats.token_weight:.0f}, "
        f"{stats.skipped_empty_documents} empty documents skipped"
    )


@click.group("data")
def data_group() -> None:
    """Prepare and inspect BigARTM batch directories."""


@data_group.command("prepare")
@click.option("--uci", nargs=2, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              metavar="DOCWORD VOCAB", help="UCI Bag-of-Words: docword.*.txt and vocab.*.txt.")
@click.option("--vw", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Vowpal Wabbit text file, one document per line.")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Output directory (must not exist or be empty): *.batch, vocab.txt, corpus.json.")
@click.option("--batch-size", default=1000, show_default=True, type=click.IntRange(min=1),
              help="Documents per batch.")
def prepare_command(uci: tuple[Path, Path] | None, vw: Path | None, out: Path, batch_size: int) -> None:
    """Convert a UCI Bag-of-Words or Vowpal Wabbit collection into batches + vocabulary."""
    if (uci is None) == (vw is None):
        raise click.UsageError("give exactly one of --uci DOCWORD VOCAB or --vw FILE")
    stats = prepare_uci(uci[0], uci[1], out, batch_size) if uci else prepare_vw(vw, out, batch_size)
    _print_stats(stats, out)


@data_group.command("debian")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Output directory; reused as is when it already holds this corpus.")
@click.option("--max-docs", type=click.IntRange(min=1), default=None,
              help="Keep only the first N packages (by name), for small fast corpora.")
@click.option("--batch-size", default=1000, show_default=True, type=click.IntRange(min=1),
              help="Documents per batch.")
def debian_command(out: Path, max_docs: int | None, batch_size: int) -> None:
    """Fetch Debian's long package descriptions (apt Translation-en) and write them as batches."""
    stats = prepare_debian(out, CorpusOptions(max_docs=max_docs, batch_size=batch_size))
    _print_stats(stats, out)


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
