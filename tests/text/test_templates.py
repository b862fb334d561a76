"""Text templates over item and user tables."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lmrec.errors import ConfigError
from lmrec.text.templates import default_item_template, default_user_template, render


def test_movielens_template(data_dir):
    from lmrec.data import load_ml1m

    data = load_ml1m(data_dir / "ml-1m")
    template = default_item_template(data.item_table)
    assert template == "Title: {title}. Genres: {genres}. Year: {year}."
    assert render(template, data.item_table.head(1)) == ["Title: Toy Story. Genres: Animation, Children's, Comedy. Year: 1995."]
    user = default_user_template(data.user_table)
    assert render(user, data.user_table.head(1)) == ["Gender: F. Age: under 18. Occupation: K-12 student."]


def test_amazon_template(data_dir):
    from lmrec.data import load_unisrec

    data = load_unisrec(data_dir / "amazon-scientific-unisrec")
    assert default_item_template(data.item_table) == "{text}"


def test_missing_values_and_missing_fields():
    table = pd.DataFrame({"title": ["A", None], "year": [1999.0, np.nan]})
    assert render("{title} ({year})", table) == ["A (1999)", "()"]
    with pytest.raises(ConfigError, match=r"The item template uses field\(s\) \['brand'\] that the item table lacks; "
                                          r"available fields: \['title', 'year'\]"):
        render("{title} by {brand}", table)
    with pytest.raises(ConfigError, match="Bad text template"):
        render("{title", table)
