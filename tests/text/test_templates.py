"""Text templates over item and user tables."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lmrec.errors import ConfigError
from lmrec.text.templates import default_item_template, default_user_template, empty_field_counts, render


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
    assert default_item_template(data.item_table) == "{text}"  # the title is part of every text
    assert render("{text}", data.item_table.head(1)) == [data.item_table["text"].iloc[0]]


def test_missing_values_and_missing_fields():
    table = pd.DataFrame({"title": ["A", None], "year": [1999.0, np.nan]})
    assert render("{title} ({year})", table) == ["A (1999)", ""]
    with pytest.raises(ConfigError, match=r"The item template uses field\(s\) \['brand'\] that the item table lacks; "
                                          r"available fields: \['title', 'year'\]"):
        render("{title} by {brand}", table)
    with pytest.raises(ConfigError, match="Bad text template"):
        render("{title", table)


def test_ml100k_template_exact_text(data_dir):
    from lmrec.data import load_ml100k

    table = load_ml100k(data_dir / "ml-100k").item_table
    template = default_item_template(table)
    assert template == "Title: {title}. Genres: {genres}. Year: {year}."
    assert render(template, table.head(1)) == ["Title: Toy Story. Genres: Animation, Children's, Comedy. Year: 1995."]
    texts = render(template, table)
    assert not [t for t in texts if "Year: ." in t or t.endswith(": .")]  # 2 movies have no year
    assert empty_field_counts(table, ["title", "genres", "year"]) == {"title": 0, "genres": 0, "year": 2}


@pytest.mark.parametrize("columns, template", [
    (["movieId", "title", "genres"], "Title: {title}. Genres: {genres}."),
    (["title", "year"], "Title: {title}. Year: {year}."),
    (["item", "title"], "{title}"),  # the built-in title template, as before
    (["Title"], "Title: {Title}."),
    (["genres", "title", "year", "url"], "Title: {title}. Genres: {genres}. Year: {year}."),
    (["Title", "Brand", "description"], "Title: {Title}. Brand: {Brand}. Description: {description}."),
    (["title", "categories", "text"], "Title: {title}. Categories: {categories}. {text}"),
    (["sku", "price"], None),
])
def test_default_item_template_keeps_every_known_field(columns, template):
    table = pd.DataFrame([columns], columns=columns)  # each value is its column's name
    assert default_item_template(table) == template


def test_field_already_in_text_is_left_out():
    table = pd.DataFrame({"title": ["Solder", "Flux"], "text": ["Solder. Tools. Acme.", "Flux. Chemicals."]})
    assert default_item_template(table) == "{text}"
    table.loc[1, "title"] = "Rosin"  # no longer inside its text: kept
    assert default_item_template(table) == "Title: {title}. {text}"


def test_empty_field_drops_its_segment():
    table = pd.DataFrame({"title": ["Heat", "", None], "genres": [None, "Drama", "  "], "year": [1995.0, 2001, None]})
    template = default_item_template(table)
    assert render(template, table) == ["Title: Heat. Year: 1995.", "Genres: Drama. Year: 2001.", ""]
    assert empty_field_counts(table) == {"title": 2, "genres": 2, "year": 1}
    assert render("{title}, {year}", table) == ["Heat, 1995", "2001", ""]
    assert render("Name {{1}}: {title}.", table) == ["Name {1}: Heat.", "", ""]
