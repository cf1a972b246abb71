"""The stage table: which stage runs when, and clear errors for a bad LOADCTL_STAGES."""

from locust_workers.shapes import stage_at  # isort: skip

import pytest

from locust_workers.contract import StageRow, decode_stages

STAGES = (StageRow(10, 5, 1, "ramp_up"), StageRow(20, 5, 1, "steady"), StageRow(5, 0, 5, "ramp_down"))


@pytest.mark.parametrize(
    ("elapsed", "index"), [(0, 0), (9.99, 0), (10, 1), (29.9, 1), (30, 2), (34.9, 2), (35, None), (1e6, None)]
)
def test_stage_at(elapsed, index):
    assert stage_at(STAGES, elapsed) == index


def test_parse_stages_round_trip():
    text = (
        '[{"duration": 10, "users": 5, "spawn_rate": 1, "phase": "ramp_up"}, {"duration": 3, "users": 0,'
        ' "spawn_rate": 2}]'
    )
    assert decode_stages(text) == (StageRow(10, 5, 1, "ramp_up"), StageRow(3, 0, 2, "steady"))


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("[]", "non-empty"),
        ('[{"users": 1}]', "LOADCTL_STAGES[0]"),
        ('[{"duration": 0, "users": 1, "spawn_rate": 1}]', "duration > 0"),
    ],
)
def test_parse_stages_rejects(text, words):
    with pytest.raises(ValueError, match=words.replace("[", r"\[").replace("]", r"\]")):
        decode_stages(text)
