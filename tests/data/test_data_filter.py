"""Dictionary filtering (BigARTM's Dictionary.filter meanings), its option syntax and its use by ``data prepare``."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from artm_compose.data.collection import MANIFEST, Document
from artm_compose.data.commands import data_group
from artm_compose.data.dictionary_filter import DictionaryFilter, filter_collection, parse_filter
from artm_compose.data.prepare import prepare_vw
from artm_compose.data.vocab import read_vocab
from artm_compose.errors import ConfigError
from support.data import collection_counts

CLASSES = ["@default_class"] * 6 + ["@tag"] * 3
DF = np.array([1, 2, 3, 4, 5, 5, 1, 2, 6])


def kept(options: dict[str, list[str]], n_documents: int = 10) -> list[int]:
    return np.flatnonzero(parse_filter(options).keep(CLASSES, DF, n_documents)).tolist()


def test_bounds_lower_inclusive_upper_strict() -> None:
    assert kept({"min_df": ["2"]}) == [1, 2, 3, 4, 5, 7, 8]
    assert kept({"max_df": ["5"]}) == [0, 1, 2, 3, 6, 7]  # df 5 is not < 5
    assert kept({"min_df_rate": ["0.3"]}) == [2, 3, 4, 5, 8]  # df >= 3 of 10 documents
    assert kept({"max_df_rate": ["0.5"]}) == [0, 1, 2, 3, 6, 7]  # df < 5
    assert kept({"max_df_rate": ["1.5"]}) == list(range(9))


def test_class_values_win_over_values_for_every_modality() -> None:
    assert kept({"min_df": ["3", "@tag=1"]}) == [2, 3, 4, 5, 6, 7, 8]
    assert kept({"min_df": ["@tag=2"]}) == [0, 1, 2, 3, 4, 5, 7, 8]  # only @tag is bounded


def test_max_dictionary_size_drops_ties_at_the_cut() -> None:
    # the four largest df are 6, 5, 5, 4; the fifth is 3: everything with df <= 3 goes
    assert kept({"max_dictionary_size": ["4"]}) == [3, 4, 5, 8]
    # size 2: the third largest df is 5, so both fives go with it
    assert kept({"max_dictionary_size": ["2"]}) == [8]
    assert kept({"max_dictionary_size": ["9"]}) == list(range(9))
    # per modality: @tag keeps its best one; the other modality is untouched
    assert kept({"max_dictionary_size": ["@tag=1"]}) == [0, 1, 2, 3, 4, 5, 8]
    # thresholds first, then the size among what passed
    assert kept({"min_df": ["2"], "max_df": ["6"], "max_dictionary_size": ["3"]}) == [3, 4, 5]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"min_df": ["-1"]}, "--min-df '-1': expected a number >= 0"),
        ({"min_df": ["five"]}, "--min-df 'five': expected a number >= 0 or CLASS_ID=VALUE"),
        ({"max_df_rate": ["@tag=nan"]}, "--max-df-rate '@tag=nan': expected a number >= 0"),
        ({"max_dictionary_size": ["0"]}, "--max-dictionary-size '0': expected a whole number >= 1"),
        ({"max_dictionary_size": ["2.5"]}, "--max-dictionary-size '2.5': expected a whole number >= 1"),
        ({"min_df": ["=3"]}, "--min-df '=3': the class id before '=' is empty"),
        ({"min_df": ["@tag=2", "@tag=3"]}, "--min-df given twice for class id @tag: '@tag=3'"),
        ({"min_df": ["2", "3"]}, "--min-df given twice for every modality: '3'"),
    ],
)
def test_bad_values_are_refused_naming_them(options: dict[str, list[str]], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_filter(options)


def test_unknown_class_id_is_refused() -> None:
    with pytest.raises(ConfigError, match="class id '@author', which no document carries"):
        parse_filter({"min_df": ["@author=2"]}).keep(CLASSES, DF, 10)


def test_merged_replaces_same_scope_only() -> None:
    base = DictionaryFilter({"min_df": {None: 5}, "max_df_rate": {None: 0.5}})
    merged = base.merged(parse_filter({"min_df": ["@tag=2"], "max_df_rate": ["0.9"]}))
    assert merged.describe() == {"min_df": {"*": 5, "@tag": 2.0}, "max_df_rate": {"*": 0.9}}


def test_filter_collection_renumbers_and_empties_documents() -> None:
    documents = [
        Document(0, "a", np.array([0, 1, 2], np.int32), np.array([1, 2, 3], np.float32)),
        Document(1, "b", np.array([2], np.int32), np.array([4], np.float32)),
        Document(2, "c", np.array([1, 2], np.int32), np.array([5, 6], np.float32)),
    ]
    tokens, classes, out = filter_collection(["x", "y", "z"], ["@default_class"] * 3, documents,
                                             parse_filter({"min_df": ["2"], "max_df": ["3"]}))
    assert (tokens, classes) == (["y"], ["@default_class"])  # x: df 1, z: df 3
    assert [d.vocab_index.tolist() for d in out] == [[0], [], [0]]
    assert [d.weights.tolist() for d in out] == [[2.0], [], [5.0]]


def test_prepare_vw_with_filters_per_modality(tmp_path: Path) -> None:
    (tmp_path / "c.vw").write_text(
        "d1 apple pear |@tag red\n"
        "d2 apple plum |@tag red blue\n"
        "d3 apple |@tag blue\n"
        "d4 kiwi |@tag green\n"
    )
    stats = prepare_vw(tmp_path / "c.vw", tmp_path / "out",
                       dictionary_filter=parse_filter({"min_df": ["2", "@tag=1"], "max_df_rate": ["0.75"]}))
    vocab = read_vocab(tmp_path / "out" / "vocab.txt")
    # apple: df 3 of 4 is not < 0.75 x 4; pear, plum, kiwi: df 1 < 2; all tags pass min_df 1
    assert list(zip(vocab.class_ids, vocab.tokens)) == [("@tag", "red"), ("@tag", "blue"), ("@tag", "green")]
    assert [title for _, title, _ in collection_counts(tmp_path / "out")] == ["d1", "d2", "d3", "d4"]
    assert stats.skipped_empty_documents == 0
    manifest = json.loads((tmp_path / "out" / MANIFEST).read_text())
    assert manifest["options"]["dictionary_filter"] == {"min_df": {"*": 2.0, "@tag": 1.0}, "max_df_rate": {"*": 0.75}}


def test_cli_filters_and_their_errors(tmp_path: Path) -> None:
    (tmp_path / "c.vw").write_text("d1 apple pear |@tag red\nd2 apple |@tag red\nd3 kiwi\n")
    runner = CliRunner()
    result = runner.invoke(data_group, ["prepare", "--vw", str(tmp_path / "c.vw"), "--out", str(tmp_path / "o"),
                                        "--min-df", "2"])
    assert result.exit_code == 0, result.output
    assert "2 documents in 1 batches, 2 tokens" in result.output and "1 empty documents skipped" in result.output
    result = runner.invoke(data_group, ["prepare", "--vw", str(tmp_path / "c.vw"), "--out", str(tmp_path / "p"),
                                        "--max-df-rate", "@tag=-0.5"])
    assert isinstance(result.exception, ConfigError) and "'@tag=-0.5'" in str(result.exception)
    result = runner.invoke(data_group, ["prepare", "--vw", str(tmp_path / "c.vw"), "--out", str(tmp_path / "p"),
                                        "--min-df", "@author=2"])
    assert isinstance(result.exception, ConfigError) and "'@author'" in str(result.exception)
    assert not (tmp_path / "p").exists()
