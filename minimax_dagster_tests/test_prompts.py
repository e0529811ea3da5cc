"""Prompt rows: ``s3://`` images, partitions, and the errors that name the field and the fix."""

from __future__ import annotations

import pytest

from minimax_dagster.production import PromptValidationError, VideoPrompt, validate_prompt_rows

TEMPLATE = "392747428568649728"  # simulator "Diving": image required, no text


def problems(rows: list[object]) -> list[str]:
    with pytest.raises(PromptValidationError) as caught:
        validate_prompt_rows(rows, default_template_id=TEMPLATE)
    return [str(e) for e in caught.value.errors]


def test_an_s3_image_is_a_kind_of_its_own() -> None:
    (row,) = validate_prompt_rows(
        [{"id": "a", "image": "s3://upstream-images/faces/ada.png"}], default_template_id="1"
    )
    assert row.image_kind == "s3" and row.image == "s3://upstream-images/faces/ada.png"


@pytest.mark.parametrize(
    ("image", "fix"),
    [
        ("s3://Bad_Bucket/a.png", "the bucket name 'Bad_Bucket' is not valid"),
        ("s3://upstream-images", "names no object key; give s3://upstream-images/key"),
        ("s3://upstream-images/", "names no object key; give s3://upstream-images/key"),
    ],
)
def test_a_bad_s3_image_names_the_field_and_the_fix(image: str, fix: str) -> None:
    (problem,) = problems([{"id": "a", "image": image}])
    assert problem.startswith("row 0 (id 'a'): image: ") and fix in problem


def test_a_missing_file_mentions_every_kind_of_image() -> None:
    (problem,) = problems([{"id": "a", "image": "/no/such/face.png"}])
    assert "not found; give an existing path, URL, s3://bucket/key or fileID" in problem


def test_the_same_id_in_two_partitions_is_two_rows_but_not_twice_in_one() -> None:
    rows = [
        VideoPrompt(id="a", prompt="x", template_id="1", partition="p1"),
        VideoPrompt(id="a", prompt="x", template_id="1", partition="p2"),
    ]
    assert [r.partition for r in validate_prompt_rows(rows)] == ["p1", "p2"]
    with pytest.raises(PromptValidationError, match="duplicate of row 0; ids must be unique in a partition"):
        validate_prompt_rows([*rows, VideoPrompt(id="a", prompt="y", template_id="1", partition="p1")])


def test_an_unknown_field_lists_the_allowed_ones_partition_included() -> None:
    (problem,) = problems([{"id": "a", "image": "s3://imgs/a.png", "colour": "red"}])
    assert "colour: unknown field; allowed:" in problem and "partition" in problem


def test_a_row_is_labelled_with_its_partition() -> None:
    assert VideoPrompt(id="fox", template_id="1", partition="2024-05-01").label == "2024-05-01/fox"
    assert VideoPrompt(id="fox", template_id="1").label == "fox"
