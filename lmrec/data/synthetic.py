"""A synthetic interaction dataset with the structure of real ones, at any size, for scale tests.

What it imitates, and how:

- **taste clusters**: each item belongs to one of ``n_clusters`` clusters; each user prefers up
  to three clusters (Dirichlet weights) and takes ``1 - explore`` of their interactions from them,
  the rest from the whole catalogue;
- **power-law popularity**: item weights follow a Zipf law (rank ** -popularity_exponent, ranks
  shuffled), inside a cluster as in the catalogue;
- **power-law activity**: users' interaction counts are drawn with Zipf weights
  (rank ** -activity_exponent), every user at least ``min_per_user``;
- **text that carries signal**: an item's title is built from templates over its attributes;
  the category noun and the style adjective are the cluster's, brand, colour and material are
  random, so a text encoder can find the cluster from the text but not the item. Titles repeat
  (at most n_clusters x 1,800 distinct ones), as near-identical product titles do, which keeps
  encoding a million-item catalogue to under 100,000 texts; a model number sets items apart.

Everything is vectorised (no Python object per row), so 20 million interactions take seconds
and about a gigabyte. :func:`write_parquet` writes ``interactions.parquet`` (user, item,
timestamp) in row groups and ``items.parquet`` (item, title, category, brand, colour, material,
model).

Example
-------
>>> data = generate(n_users=1000, n_items=500, n_interactions=20000, seed=7)  # doctest: +SKIP
>>> write_parquet(data, "synthetic-1k")                                         # doctest: +SKIP
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from lmrec.data.interactions import Interactions
from lmrec.errors import ConfigError, check_positive

NOUNS = ("headphones", "sneakers", "notebook", "teapot", "drill", "lamp", "backpack", "guitar", "blender", "tent",
         "watch", "jacket", "camera", "kettle", "chair", "microscope", "novel", "puzzle", "skillet", "bicycle",
         "keyboard", "scarf", "telescope", "vase", "helmet", "pillow", "saw", "speaker", "mug", "boots")
STYLES = ("vintage", "compact", "professional", "eco-friendly", "luxury", "rugged", "minimalist", "wireless",
          "handmade", "kids'", "ergonomic", "portable", "classic", "smart", "heavy-duty", "travel")
BRANDS = ("Acme", "Northwind", "Globex", "Initech", "Umbrella", "Stark", "Wayne", "Hooli", "Vandelay", "Soylent",
          "Tyrell", "Cyberdyne", "Aperture", "Wonka", "Gringotts", "Oscorp", "Pied Piper", "Massive Dynamic")
COLOURS = ("black", "white", "red", "blue", "green", "silver", "brown", "yellow", "grey", "pink")
MATERIALS = ("steel", "cotton", "leather", "bamboo", "plastic", "glass", "wool", "aluminium", "oak", "ceramic")


@dataclass(frozen=True)
class SyntheticSpec:
    """Sizes and shape of a synthetic dataset (see the module docstring)."""

    n_users: int = 10_000
    n_items: int = 5_000
    n_interactions: int = 200_000
    n_clusters: int = 50
    popularity_exponent: float = 0.8
    activity_exponent: float = 0.6
    explore: float = 0.2
    min_per_user: int = 3
    seed: int = 2026

    def validate(self) -> None:
        for name in ("n_users", "n_items", "n_interactions", "n_clusters", "min_per_user"):
            check_positive("SyntheticSpec", name, getattr(self, name))
        if not 0 <= self.explore <= 1:
            raise ConfigError(f"The 'explore' parameter of SyntheticSpec must be in [0, 1]; got {self.explore!r}.")
        if self.n_interactions < self.n_users * self.min_per_user:
            raise ConfigError(f"SyntheticSpec needs n_interactions >= n_users * min_per_user "
                              f"({self.n_users * self.min_per_user}); got {self.n_interactions}.")
        if self.n_clusters > self.n_items:
            raise ConfigError(f"SyntheticSpec needs n_clusters <= n_items; got {self.n_clusters} > {self.n_items}.")


def zipf_weights(n: int, exponent: float, rng: np.random.Generator) -> np.ndarray:
    """(n,) weights rank ** -exponent, ranks shuffled, summing to 1."""
    w = np.arange(1, n + 1, dtype=np.float64) ** -exponent
    return rng.permutation(w / w.sum())


def draw(cdf: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Indices drawn by inverse transform: ``cdf`` increasing, ``u`` uniform on [0, cdf[-1])."""
    return np.minimum(np.searchsorted(cdf, u, side="right"), len(cdf) - 1)


def item_titles(cluster: np.ndarray, rng: np.random.Generator) -> pd.DataFrame:
    """Attributes and a templated title per item; noun and style come from the cluster."""
    n = len(cluster)
    noun = np.asarray(NOUNS)[cluster % len(NOUNS)]
    style = np.asarray(STYLES)[(cluster // len(NOUNS) + cluster * 7) % len(STYLES)]
    brand = np.asarray(BRANDS)[rng.integers(0, len(BRANDS), n)]
    colour = np.asarray(COLOURS)[rng.integers(0, len(COLOURS), n)]
    material = np.asarray(MATERIALS)[rng.integers(0, len(MATERIALS), n)]
    title = pd.Series(style).str.cat([pd.Series(noun), pd.Series(["by"] * n), pd.Series(brand),
                                      pd.Series(["-"] * n), pd.Series(colour), pd.Series(material)], sep=" ")
    return pd.DataFrame({"item": np.arange(n), "title": title, "category": noun, "brand": brand,
                         "colour": colour, "material": material, "model": rng.integers(100, 10_000, n)})


def user_counts(spec: SyntheticSpec, rng: np.random.Generator) -> np.ndarray:
    """(n_users,) interactions per user: min_per_user each, the rest by Zipf activity weights."""
    extra = spec.n_interactions - spec.n_users * spec.min_per_user
    counts = rng.multinomial(extra, zipf_weights(spec.n_users, spec.activity_exponent, rng))
    return counts + spec.min_per_user


def generate(n_users: int = 10_000, n_items: int = 5_000, n_interactions: int = 200_000, **options: object) -> Interactions:
    """A synthetic :class:`Interactions` (options: the other :class:`SyntheticSpec` fields).

    Users and items are ``u<index>`` / ``i<index>`` (zero-padded), timestamps increase per user.
    A (user, item) pair drawn twice is kept once, so ``len(result)`` is a little below
    ``n_interactions`` when the catalogue is small.
    """
    spec = SyntheticSpec(n_users, n_items, n_interactions, **options)  # type: ignore[arg-type]
    spec.validate()
    rng = np.random.default_rng(spec.seed)
    cluster = rng.integers(0, spec.n_clusters, spec.n_items)
    by_cluster = np.argsort(cluster, kind="stable")  # items grouped by cluster
    weight = zipf_weights(spec.n_items, spec.popularity_exponent, rng)[by_cluster]
    sizes = np.bincount(cluster, minlength=spec.n_clusters)
    mass = np.bincount(cluster[by_cluster], weights=weight, minlength=spec.n_clusters)
    # cumulative weights where cluster c's items span [c, c + 1): one searchsorted draws within any cluster
    within = (np.cumsum(weight) - np.repeat(np.cumsum(mass) - mass, sizes)) / np.repeat(mass, sizes)
    cdf = np.repeat(np.arange(spec.n_clusters), sizes) + within
    global_cdf = np.cumsum(weight[np.argsort(by_cluster)])  # by item index
    taste = rng.choice(np.flatnonzero(sizes), (spec.n_users, 3))  # up to three non-empty clusters per user
    taste_cdf = np.cumsum(rng.dirichlet(np.ones(3), spec.n_users), axis=1)
    counts = user_counts(spec, rng)
    users = np.repeat(np.arange(spec.n_users), counts)
    explore = rng.random(len(users)) < spec.explore
    pick = (rng.random(len(users))[:, None] > taste_cdf[users]).sum(axis=1).clip(max=2)
    chosen = taste[users, pick]
    items = by_cluster[draw(cdf, chosen + rng.random(len(users)) * 0.999999)]
    items[explore] = draw(global_cdf, rng.random(int(explore.sum())) * global_cdf[-1])
    _, first = np.unique(users * spec.n_items + items, return_index=True)
    order = np.sort(first)  # keep first draws, in draw order (each user's rows stay in time order)
    users, items = users[order], items[order]
    # a year of random times, sorted within each user (rows are grouped by user, ascending)
    t = 1_600_000_000 + rng.integers(0, 365 * 86_400, len(users))
    timestamps = t[np.lexsort((t, users))]
    return Interactions(users=users.astype(np.int64), items=items.astype(np.int64),
                        ratings=np.ones(len(users), np.float32), timestamps=timestamps,
                        user_ids=np.char.add("u", np.char.zfill(np.arange(spec.n_users).astype(str), 8)),
                        item_ids=np.char.add("i", np.char.zfill(np.arange(spec.n_items).astype(str), 8)),
                        item_table=item_titles(cluster, rng).drop(columns="item"), name="synthetic")


def write_parquet(data: Interactions, directory: str | Path, row_group: int = 1_000_000) -> Path:
    """``interactions.parquet`` (user, item, timestamp as raw ids) and ``items.parquet``, each
    written to a temporary name and renamed when complete."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    schema = pa.schema([("user", pa.string()), ("item", pa.string()), ("timestamp", pa.int64())])
    tmp = directory / ".interactions.parquet.tmp"
    with pq.ParquetWriter(tmp, schema) as writer:
        for lo in range(0, len(data), row_group):
            sl = slice(lo, lo + row_group)
            writer.write_table(pa.table({"user": data.user_ids[data.users[sl]].astype(str),
                                         "item": data.item_ids[data.items[sl]].astype(str),
                                         "timestamp": data.timestamps[sl]}, schema=schema))
    tmp.replace(directory / "interactions.parquet")
    items = data.item_table.assign(item=data.item_ids.astype(str))
    pq.write_table(pa.Table.from_pandas(items[["item", *data.item_table.columns]], preserve_index=False),
                   directory / ".items.parquet.tmp")
    (directory / ".items.parquet.tmp").replace(directory / "items.parquet")
    return directory
