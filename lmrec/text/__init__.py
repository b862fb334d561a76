"""Text: templates over item/user tables, encoders, the embedding cache."""
from lmrec.text.cache import EmbeddingCache
from lmrec.text.encoders import ENCODERS, HFEncoder, SentenceTransformerEncoder, encode_texts, get_encoder
from lmrec.text.templates import ITEM_TEMPLATES, USER_TEMPLATES, render

__all__ = ["ENCODERS", "EmbeddingCache", "HFEncoder", "ITEM_TEMPLATES", "SentenceTransformerEncoder", "USER_TEMPLATES",
           "encode_texts", "get_encoder", "render"]
