"""Model specs on the command line: key=value, quoted values with commas, JSON; one-line errors."""
from __future__ import annotations

import pytest

from lmrec.cli import main, parse_model_spec
from lmrec.errors import ConfigError

TEMPLATE = "Title: {title}, {year}"


@pytest.mark.parametrize("spec, expected", [
    ("ease", ("ease", {})),
    ("ease:lam=500", ("ease", {"lam": 500})),
    ("bpr-mf:dim=64, loss=hinge,reg=1e-4,bias=true",
     ("bpr-mf", {"dim": 64, "loss": "hinge", "reg": 1e-4, "bias": True})),
    ('lm-ranker:item_template="Title: {title}, {year}",dim=64', ("lm-ranker", {"item_template": TEMPLATE, "dim": 64})),
    ("lm-ranker:item_template='Title: {title}, {year}'", ("lm-ranker", {"item_template": TEMPLATE})),
    ('lm-ranker:item_template="say \\"hi\\", {title}"', ("lm-ranker", {"item_template": 'say "hi", {title}'})),
    ('lm-ranker:name="500"', ("lm-ranker", {"name": "500"})),  # quoted: stays a string
    ('lm-ranker:{"item_template": "Title: {title}, {year}", "dim": 64}',
     ("lm-ranker", {"item_template": TEMPLATE, "dim": 64})),
])
def test_forms(spec, expected):
    assert parse_model_spec(spec) == expected


@pytest.mark.parametrize("spec, problem", [
    ("ease:lam", r"parameter 'lam' is not key=value"),
    ("lm-ranker:item_template=Title: {title}, {year}", r"parameter '\{year\}' is not key=value"),
    ('lm-ranker:item_template="Title: {title}, {year}', r"a \" quote is not closed"),
    ('lm-ranker:{"dim": }', r"the parameters are not valid JSON \(Expecting value at character 9\)"),
    ("lm-ranker:[1, 2]", r"parameter '\[1' is not key=value"),
    ('lm-ranker:{"a": 1} ', None),
    ("ease:lam=1,lam=2", r"parameter 'lam' is given twice"),
    (":lam=1", r"the model name is missing"),
    ("ease:=5", r"parameter '=5' is not key=value"),
])
def test_malformed_specs_name_spec_and_expected_forms(spec, problem):
    if problem is None:
        assert parse_model_spec(spec) == ("lm-ranker", {"a": 1})
        return
    with pytest.raises(ConfigError, match=rf"model spec .*: {problem}; expected NAME, NAME:key=value,key=value"):
        parse_model_spec(spec)


def test_malformed_spec_exits_2_with_one_line(tmp_path, capsys):
    code = main(["compare", "--split", str(tmp_path / "none"), "--models", "most-popular;lm-ranker:item_template=a, b"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert err.startswith("lmrec: error: model spec 'lm-ranker:item_template=a, b': parameter 'b' is not key=value; "
                          "expected NAME, NAME:key=value,key=value")
