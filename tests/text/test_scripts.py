"""The script check: item text mostly in a script the encoder was not trained on warns, naming the
multilingual encoder; no real encoder is needed (the check reads texts and declared languages)."""
from __future__ import annotations

import warnings

import pytest

from lmrec.text.scripts import ScriptWarning, check_scripts, foreign_share, script_of, script_shares
from lmrec.text.sources import languages_of

CHINESE = ["玩具总动员 (1995) 动画, 喜剧", "大话西游之月光宝盒 喜剧, 奇幻", "卧虎藏龙 动作, 武侠",
           "Heat (1995)"]
ENGLISH = ["Toy Story (1995) Animation, Comedy", "Amélie (2001) Comedy, Romance", "Heat (1995) Crime"]


def test_scripts_of_letters_and_shares():
    scripts = [script_of(c) for c in "aé玩Жά한ア"]
    assert scripts == ["LATIN", "LATIN", "CJK", "CYRILLIC", "GREEK", "HANGUL", "KATAKANA"]
    shares = script_shares(["ab 12!", "玩具"])  # digits and punctuation are not letters
    assert shares == {"LATIN": 0.5, "CJK": 0.5}
    assert script_shares(["123", ""]) == {}


def test_chinese_item_text_warns_for_an_english_only_encoder():
    share, script = foreign_share(CHINESE, ("en",))
    assert script == "CJK" and 0.8 < share < 1
    with pytest.warns(ScriptWarning, match=r"\d+% of the letters of the item texts .* 'minilm' .* CJK.*"
                                           r"encoder='multilingual-e5-small'"):
        check_scripts(CHINESE, "minilm", languages_of("minilm"))


def test_no_warning_for_latin_text_multilingual_or_unknown_encoders():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert check_scripts(ENGLISH, "minilm", ("en",)) is None
        assert check_scripts(CHINESE, "multilingual-e5-small", languages_of("multilingual-e5-small")) is None
        assert check_scripts(CHINESE, "/some/folder", languages_of("/some/folder")) is None  # unknown: no claim
    assert languages_of("minilm") == ("en",) and languages_of("/some/folder") is None


def test_a_text_model_fit_on_chinese_items_warns_once():
    """TextSide checks the item texts it encodes for a fit (once), not user or profile texts."""
    import numpy as np
    import pandas as pd

    from lmrec.data import Interactions
    from lmrec.models.text_knn import TextKNN

    table = pd.DataFrame({"item": [0, 1, 2, 3], "title": CHINESE})
    data = Interactions(users=np.array([0, 0, 1, 1]), items=np.array([0, 1, 2, 3]),
                        ratings=np.ones(4, dtype=np.float32), timestamps=np.arange(4),
                        user_ids=np.array([0, 1]), item_ids=np.arange(4), item_table=table,
                        user_table=pd.DataFrame(index=pd.RangeIndex(2)), name="chinese")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        TextKNN(cache_dir=None).fit(data)
    found = [w for w in caught if issubclass(w.category, ScriptWarning)]
    assert len(found) == 1 and "multilingual-e5-small" in str(found[0].message)
