"""The API reads its head revisions from the migration files, without Alembic: the same heads."""

from __future__ import annotations

import pytest
from alembic.script import ScriptDirectory

from app.shared.migrations import alembic_config, head_revisions


def test_the_heads_are_alembics():
    assert head_revisions() == set(ScriptDirectory.from_config(alembic_config()).get_heads())


def script(revision: str, down: str) -> str:
    return f'"""A migration."""\nrevision: str = {revision!r}\ndown_revision = {down}\n'


@pytest.mark.parametrize(
    ("scripts", "heads"),
    [
        ({"a": script("a", "None"), "b": script("b", "'a'")}, {"b"}),
        ({"a": script("a", "None"), "b": script("b", "'a'"), "c": script("c", "'a'")}, {"b", "c"}),
        (
            {
                "a": script("a", "None"),
                "b": script("b", "'a'"),
                "c": script("c", "'a'"),
                "m": script("m", "('b', 'c')"),
            },
            {"m"},
        ),
    ],
    ids=["linear", "two-branches", "merged"],
)
def test_heads_of_linear_branched_and_merged_histories(tmp_path, scripts, heads):
    for name, text in scripts.items():
        (tmp_path / f"{name}.py").write_text(text)
    assert head_revisions(tmp_path) == heads


def test_a_script_without_a_revision_is_refused(tmp_path):
    (tmp_path / "broken.py").write_text('"""No revision."""\ndown_revision = None\n')
    with pytest.raises(ValueError, match=r"broken\.py names no revision"):
        head_revisions(tmp_path)
