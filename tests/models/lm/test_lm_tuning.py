"""Encoder tuning inside LMRanker: the LoRA and full tuning parts, the refreshed table, adapters on disk."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from lmrec.errors import ArtifactError, ConfigError
from lmrec.models import LMRanker, Recommender
from lmrec.models.lm import Cosine, ItemTower
from lmrec.models.lm.tuned_table import TunedTable
from lmrec.text.options import TUNINGS, Encoder, FullTune, LoRA
from lmrec.text.tuning import TunableEncoder
from lmrec.training import TrainConfig

CFG = TrainConfig(epochs=40, batch_size=16, lr=0.05, progress=False, seed=3)


def tuned(tiny_split, tiny_encoder, tune: str, rank: int | None = None) -> LMRanker:
    fields = {"rank": rank} if rank is not None and tune == "lora" else {}
    options = Encoder(tiny_encoder, tuning=TUNINGS[tune](lr=5e-3, refresh_every=2, **fields))
    return LMRanker(encoder=options, items=ItemTower(dim=8), scorer=Cosine(0.2), loss="softmax", cache_dir=None,
                    config=CFG).fit(tiny_split.train)


@pytest.mark.parametrize("tune", ["lora", "full"])
def test_tuning_changes_the_encoder_and_round_trips(tiny_split, tiny_encoder, tmp_path, tune):
    model = tuned(tiny_split, tiny_encoder, tune, rank=4)
    frozen = TunableEncoder(Encoder(tiny_encoder, tuning=FullTune()))  # the pretrained weights
    ids, mask = frozen.tokenize(["mango"])
    before = frozen.encode(ids, mask)[0]
    after = torch.from_numpy(model.text_.encode(["mango"], cache=False))[0]
    assert not torch.allclose(before, after, atol=1e-4), "training moved the encoder"
    model.save(tmp_path / "m")
    files = sorted(p.name for p in (tmp_path / "m" / "encoder").glob("*.safetensors"))
    assert files == (["adapter_model.safetensors"] if tune == "lora" else ["model.safetensors"])
    back = Recommender.load(tmp_path / "m")
    np.testing.assert_allclose(back.score(np.arange(20), ids="index"), model.score(np.arange(20), ids="index"), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(back.text_.encode(["mango"], cache=False)[0], after.numpy(), rtol=1e-4, atol=1e-5)
    new = pd.DataFrame({"item": [100], "title": ["mango"]})  # a new item goes through the tuned encoder
    np.testing.assert_allclose(back.add_items(new, ids="index"), model.add_items(new, ids="index"))
    np.testing.assert_allclose(back.score([0], ids="index"), model.score([0], ids="index"), rtol=1e-4, atol=1e-5)
    back.save(tmp_path / "again")  # a loaded tuned model saves its encoder again
    again = Recommender.load(tmp_path / "again")
    np.testing.assert_allclose(again.score([0], ids="index"), back.score([0], ids="index"), rtol=1e-5, atol=1e-6)


def test_lora_trains_only_the_adapters(tiny_encoder):
    enc = TunableEncoder(Encoder(tiny_encoder, tuning=LoRA(rank=2, targets=["query", "value"])))
    names = [n for n, p in enc.model.named_parameters() if p.requires_grad]
    assert names and all("lora_" in n for n in names)
    assert sum(p.numel() for p in enc.trainable_parameters()) == 2 * 2 * (2 * 32 * 2)  # 2 layers x (q, v) x (A, B)


def test_the_refreshed_table_equals_a_fresh_encoding(tiny_split, tiny_encoder):
    enc = TunableEncoder(Encoder(tiny_encoder, tuning=FullTune(grad_items=3)))
    texts = [f"item {i} {t}" for i, t in enumerate(tiny_split.train.item_table["title"])]
    table = TunedTable(torch.zeros(len(texts), 32), enc, texts)
    opt = torch.optim.SGD(enc.parameters(), lr=0.5)
    table.train()
    pos, neg = torch.tensor([1, 1, 4]), torch.tensor([[2, 3], [5, 6], [7, 8]])
    index, weight = table.chosen(pos, neg)
    assert sorted(index[:2].tolist()) == [1, 4] and index[2].item() in (2, 3, 5, 6, 7, 8), \
        "the distinct positives (they fit in the budget), then a sampled negative"
    assert weight.tolist() == [1.0, 1.0, 6.0], "a sampled item stands for its stratum: 6 negatives, 1 drawn"
    out = table.training_table(pos, neg)
    assert out.requires_grad and torch.equal(out, table.table), "the forward values are the table's"
    out[[1, 4, 2]].sum().backward()
    opt.step()
    table.after_update()
    table.refresh()
    ids, mask = enc.tokenize(texts)
    torch.testing.assert_close(table.table, enc.encode(ids, mask))
    enc.eval()
    with torch.no_grad():
        torch.testing.assert_close(table.table[:4], enc(ids[:4], mask[:4]), rtol=1e-5, atol=1e-6)


def test_fresh_vectors_are_written_back_without_dropout(tiny_split, tiny_encoder):
    """The encoder's dropout stays off in training: the vectors a step writes back into the table
    are the ones a refresh at the same weights would give."""
    enc = TunableEncoder(Encoder(tiny_encoder, tuning=LoRA(grad_items=4)))
    texts = [f"item {i} {t}" for i, t in enumerate(tiny_split.train.item_table["title"])]
    ids, mask = enc.tokenize(texts)
    table = TunedTable(torch.zeros(len(texts), 32), enc, texts)
    table.train()
    dropouts = [m for m in enc.model.modules() if isinstance(m, torch.nn.Dropout)]
    assert table.training and enc.model.training and dropouts and all(m.p == 0.0 for m in dropouts)
    table.training_table(torch.tensor([0, 3, 5]), torch.tensor([[1], [2], [4]]))
    table.after_update()
    written = table.table.abs().sum(1) > 0
    assert written.sum() == 4
    torch.testing.assert_close(table.table[written], enc.encode(ids, mask)[written], rtol=1e-5, atol=1e-6)


def test_the_gradient_estimate_is_unbiased(tiny_split, tiny_encoder):
    """Averaged over many draws, the sampled, weighted gradient equals the gradient with every item
    of the loss encoded fresh."""
    enc = TunableEncoder(Encoder(tiny_encoder, tuning=LoRA(rank=2, grad_items=3)))
    texts = [f"item {i} {t}" for i, t in enumerate(tiny_split.train.item_table["title"])]
    ids, mask = enc.tokenize(texts)
    table = TunedTable(enc.encode(ids, mask), enc, texts, seed=1)
    table.train()
    with torch.no_grad():  # LoRA's B starts at zero: give the adapters some weight first
        for p in enc.trainable_parameters():
            p.normal_(0, 0.1)
    target = torch.randn(len(texts), 32)
    pos, neg = torch.tensor([0, 1]), torch.tensor([[2, 3, 4], [5, 6, 7]])

    def gradient(rows: torch.Tensor) -> torch.Tensor:
        enc.zero_grad()
        (rows[:8] * target[:8]).sum().backward()
        return torch.cat([p.grad.flatten() for p in enc.trainable_parameters()])

    exact = gradient(enc(ids, mask))
    draws = torch.stack([gradient(table.training_table(pos, neg)) for _ in range(400)]).mean(0)
    assert torch.nn.functional.cosine_similarity(draws, exact, dim=0) > 0.98
    torch.testing.assert_close(draws.norm(), exact.norm(), rtol=0.1, atol=0)


def test_a_batch_over_the_whole_catalogue_samples_its_negatives(tiny_encoder):
    enc = TunableEncoder(Encoder(tiny_encoder, tuning=FullTune(grad_items=5)))
    table = TunedTable(torch.zeros(10, 32), enc, [str(i) for i in range(10)])
    everything = torch.arange(10).expand(100, -1)  # the "all"/"unseen" samplers
    index, weight = table.chosen(torch.tensor([3]), everything)
    assert index[0] == 3 and len(index) == 5 == len(set(index.tolist()))
    assert weight.tolist() == [1.0] + [9 / 4] * 4, "4 of the 9 other items stand for all of them"


def test_a_missing_or_corrupt_adapter_is_refused(tiny_split, tiny_encoder, tmp_path):
    model = tuned(tiny_split, tiny_encoder, "lora")
    model.save(tmp_path / "m")
    (tmp_path / "m" / "encoder" / "adapter_model.safetensors").unlink()
    with pytest.raises(ArtifactError, match="the tuned encoder's weights are missing"):
        Recommender.load(tmp_path / "m")
    model.save(tmp_path / "m")
    (tmp_path / "m" / "encoder" / "adapter_model.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(ArtifactError, match="cannot load the LoRA adapters"):
        Recommender.load(tmp_path / "m")
    assert json.loads((tmp_path / "m" / "manifest.json").read_text())["params"]["encoder"]["tuning"]["type"] == "lora"


def test_encoder_options_are_validated(tiny_split):
    with pytest.raises(ConfigError, match="'rank' parameter of LoRA must be a number >= 1; got 0"):
        Encoder(tuning=LoRA(rank=0)).validate()
    with pytest.raises(ConfigError, match="tuning='lora' needs backend='hf'"):
        Encoder(tuning="lora", backend="sentence-transformers").validate()
    with pytest.raises(ConfigError, match="dtype='int8' quantises a frozen encoder; got tuning='full'"):
        Encoder(tuning=FullTune(), dtype="int8").validate()
    with pytest.raises(ConfigError, match="'targets' parameter of LoRA must be a non-empty list"):
        Encoder(tuning={"type": "lora", "targets": []}).validate()
    with pytest.raises(ConfigError, match=r"Unknown FullTune field\(s\) \['rank'\]"):
        Encoder(tuning={"type": "full", "rank": 4})  # a field of another part
    assert Encoder.from_dict(Encoder(tuning=LoRA(rank=3)).to_dict()).tuning == LoRA(rank=3)
    assert Encoder(tuning="full").tuning == FullTune() and not Encoder().trainable and Encoder(tuning="lora").trainable


@pytest.mark.parametrize("tune", ["lora", "full"])
def test_training_from_a_tuned_model_starts_from_its_encoder(tiny_split, tiny_encoder, tmp_path, tune):
    """A retraining round (fit(init_from=current)) keeps the tuned encoder, fresh or loaded from disk."""
    first = tuned(tiny_split, tiny_encoder, tune, rank=4)
    first.save(tmp_path / "m")
    for source in (first, Recommender.load(tmp_path / "m")):
        again = LMRanker(**{**first.get_params(), "encoder": Encoder.from_dict({**first.encoder_.to_dict(),
                                                                         "tuning": {**first.encoder_.tuning.to_dict(),
                                                                                    "lr": 1e-12}}),
                            "config": TrainConfig(epochs=1, batch_size=16, lr=1e-12, progress=False)})
        again.fit(tiny_split.train, init_from=source)
        np.testing.assert_allclose(again.text_.encode(["mango"], cache=False), first.text_.encode(["mango"], cache=False),
                                   rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("checkpointing", [False, True])
def test_gradient_checkpointing_recomputes_the_layers_in_a_tuning_step(tiny_split, tiny_encoder, checkpointing):
    """Checkpointing trades compute for memory: the backward runs each encoder layer's forward
    again. The tuned encoder trains without dropout, so the values and gradients do not change."""
    enc = TunableEncoder(Encoder(tiny_encoder, tuning=LoRA(rank=2, checkpointing=checkpointing)))
    texts = [f"item {i} {t}" for i, t in enumerate(tiny_split.train.item_table["title"])]
    table = TunedTable(torch.zeros(len(texts), 32), enc, texts)
    table.train()
    calls = []
    inside = enc.model.base_model.model.encoder.layer[0].attention  # the layer's forward is what is checkpointed
    inside.register_forward_hook(lambda *args: calls.append(1))
    ids, mask = enc.tokenize(texts[:6])
    out = enc(ids, mask)
    out.sum().backward()
    assert len(calls) == (2 if checkpointing else 1)
    torch.testing.assert_close(out.detach(), enc.encode(ids, mask), rtol=1e-5, atol=1e-6)  # no dropout in training
