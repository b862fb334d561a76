"""Text: templates over item/user tables, encoders (frozen, LoRA, full), named encoders, the embedding cache."""
from lmrec.text.cache import EmbeddingCache
from lmrec.text.encoders import ENCODERS, HFEncoder, SentenceTransformerEncoder, encode_texts, get_encoder
from lmrec.text.options import TUNINGS, Encoder, Frozen, FullTune, LoRA
from lmrec.text.templates import ITEM_TEMPLATES, USER_TEMPLATES, render

__all__ = ["ENCODERS", "EmbeddingCache", "Encoder", "Frozen", "FullTune", "HFEncoder", "ITEM_TEMPLATES", "LoRA",
           "SentenceTransformerEncoder", "TUNINGS", "USER_TEMPLATES", "encode_texts", "get_encoder", "render"]
