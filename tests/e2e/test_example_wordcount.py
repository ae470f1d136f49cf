"""examples/wordcount: a data job over a real text corpus on the head node
writes its result file back."""

import pytest

from examples_common import run_example

pytestmark = pytest.mark.needs_mrc


def test_wordcount_on_target(harness, workdir):
    run_example(harness, workdir, "wordcount")
    result = list(workdir.glob("mrc-wordcount.*/top-words.txt"))
    assert result and result[0].stat().st_size > 0
    assert "the" in result[0].read_text()
