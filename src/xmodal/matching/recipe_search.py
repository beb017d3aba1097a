"""im2recipe's galleries: a split's images and recipes embedded in batches
(:func:`embed_recipe_split`), and image queries searched against the recipes
(:func:`search_recipes`, what ``xmodal predict recipe`` returns).

Example::

    img, rec = embed_recipe_split(model, EncodedRecipes(...), batch_size=250)  # (N, D) each
    records = search_recipes(["dish.png"], [image], "out", Embedder(model, 250),
                             recipe_emb=rec, recipes=source.recipes, k=3)
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from xmodal.data.recipes import RECIPE_KEYS
from xmodal.matching.gallery import embed_batches, ranked

__all__ = ["embed_recipe_split", "search_recipes"]


def embed_recipe_split(
    model: nn.Module, data, *, batch_size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Every image and every recipe of ``data`` (an
    :class:`~xmodal.data.recipes.EncodedRecipes`) through the :class:`Im2Recipe`
    ``model`` (put in eval mode), ``batch_size`` at a time on its device:
    ``(img (N, D), rec (N, D))`` on the CPU, row ``i`` of both from recipe ``i``."""
    model.eval()
    device = next(model.parameters()).device

    def images(rows: range) -> torch.Tensor:
        return model.embed_images(data.image_batch(rows).to(device))

    def recipes(rows: range) -> torch.Tensor:
        batch = data.text_batch(rows)
        return model.embed_recipes(*(batch[k].to(device) for k in RECIPE_KEYS))

    rows = range(len(data))
    img = embed_batches(images, rows, batch_size=batch_size)
    return img, embed_batches(recipes, rows, batch_size=batch_size)


def search_recipes(
    inputs: Sequence[str],
    images: Sequence[torch.Tensor],
    out_dir: str | Path,
    embed,
    *,
    recipe_emb: torch.Tensor,
    recipes: Sequence[dict],
    k: int,
    split: str = "test",
) -> list[dict]:
    """Image queries (``images[i]`` ``(3, H, W)``, read from the file ``inputs[i]``)
    against a gallery of recipes (``recipe_emb (N, D)``, ``recipes`` their text): per
    query ``{"input", "kind", "results" (the top ``k`` recipes, best first: ``{"recipe":
    "{split}/{j}", "index", "id", "title", "dish", "score"}``), "text", "files"}``, with a
    figure ``<stem>-<n>_top_recipes.png`` of the image and their text in ``out_dir``.
    ``embed.images`` (:class:`~xmodal.matching.gallery.Embedder`) embeds the queries."""
    from xmodal.viz.figure import save_figure
    from xmodal.viz.retrieval import plot_image_to_recipes, recipe_text

    records = []
    for n, (x, q) in enumerate(zip(inputs, images, strict=True)):
        (top,) = ranked(embed.images(q[None]) @ recipe_emb.T, k)
        hits = [
            {"recipe": f"{split}/{j}", "index": j}
            | {key: recipes[j][key] for key in ("id", "title", "dish")}
            | {"score": round(s, 4)}
            for j, s in top
        ]
        shown = [
            (recipe_text(recipes[h["index"]]), f"{h['recipe']} {h['score']:.2f}", False)
            for h in hits
        ]
        path = Path(out_dir) / f"{Path(x).stem}-{n}_top_recipes.png"
        save_figure(plot_image_to_recipes([(q, shown)]), path)
        text = " | ".join(f"{h['title']} ({h['score']:.2f})" for h in hits)
        records.append(
            {"input": x, "kind": "image", "results": hits, "text": text, "files": [str(path)]}
        )
    return records
