"""TextKNN beyond the shared contract: a model saved with layout 1's flat Encoder fields still loads."""
from __future__ import annotations

import json

import numpy as np

from lmrec.models import Recommender, TextKNN
from lmrec.text.options import Frozen


def test_a_layout_1_model_loads_with_its_encoder_fields_as_a_tuning_part(tiny_split, tmp_path):
    model = TextKNN(cache_dir=None).fit(tiny_split.train)
    model.save(tmp_path / "m")
    manifest = json.loads((tmp_path / "m" / "manifest.json").read_text())
    assert manifest["layout"] == 2 and manifest["params"]["encoder"] == "minilm"
    manifest["layout"] = 1  # as layout 1 saved an Encoder: tune, lora, lr, ... beside the inference fields
    manifest["params"]["encoder"] = {"model": "minilm", "backend": "hf", "pooling": "auto", "max_length": 128,
                                     "batch_size": 64, "tune": "frozen", "lora": {"rank": 8}, "lr": None,
                                     "grad_items": 256, "refresh_every": 100, "checkpointing": False,
                                     "dtype": "float32", "device": None}
    (tmp_path / "m" / "manifest.json").write_text(json.dumps(manifest))
    back = Recommender.load(tmp_path / "m")
    assert back.get_params()["encoder"]["tuning"] == {"type": "frozen"}
    assert back.text_side().options.tuning == Frozen()
    np.testing.assert_allclose(back.score([0, 1], ids="index"), model.score([0, 1], ids="index"), rtol=1e-5)
