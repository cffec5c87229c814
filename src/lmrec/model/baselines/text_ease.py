"""`model=ease_text`: EASE with the language model's item vectors as side information, the closed-form way
(collective EASE, Jeunen, Van Balen and Goethals, RecSys 2020).

The item text vectors E [items, width] are appended to the interaction matrix as `width` extra pseudo-users, each
weighted by √w: X' = [X; √w·Eᵀ]. EASE on X' has the Gram XᵀX + w·EEᵀ, so two items whose texts are alike
co-occur a little even when few users saw both, which is what a rare item's row of B lacks. Scores use the real
users' rows only (X_u B). `text_weight` w is in co-occurrence counts: a pair of identical unit-norm texts adds w.

The vectors are centred (the catalogue's mean removed) before normalising: sentence-encoder vectors share a large
common direction (MiniLM's pairwise cosines are mostly 0.1-0.4), which would otherwise add a near-constant w·c to
every pair instead of information about which items are alike.

It is a language-model configuration, not a classic baseline: `model.encoder` chooses the encoder and the item
texts come from the data's text template, exactly as for the text towers (frozen, cached vectors).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from lmrec.config.schema import Number, Option, Whole, check_values
from lmrec.data.sparse import CSRMatrix
from lmrec.errors import ConfigError
from lmrec.model.baselines.ease import EASE


class TextEASE(EASE):
    """EASE whose Gram adds w·EEᵀ from the frozen item text vectors; the fitted state is the same [items, items]."""

    config_options = (
        *EASE.config_options,
        Option("text_weight", (Number(0.0),), note="0: plain EASE"),
        Option("permute_text", (Whole(0),), nullable=True, note="a permutation seed; null: the real texts"),
    )

    def __init__(
        self,
        history: CSRMatrix,
        text_source: nn.Module,
        l2: float = 200.0,
        text_weight: float = 100.0,
        center: bool = True,
        permute_text: int | None = None,
    ) -> None:
        """`permute_text`: a seed; each item then gets another item's vector (a fixed random permutation). The
        control for the text's content: the Gram keeps the same spectrum, only which item reads which text is
        lost."""
        super().__init__(history, l2=l2)
        check_values(self.config_options, {"text_weight": text_weight, "permute_text": permute_text}, "model.baseline")
        all_items = getattr(text_source, "all_items", None)
        if all_items is None:
            raise ConfigError("model=ease_text needs frozen item text vectors (model/tuning=frozen)")
        rows = int(all_items().shape[0])
        if rows != history.shape[1]:
            raise ConfigError(f"{rows} item text vectors for a catalogue of {history.shape[1]} items")
        self.text_weight = float(text_weight)
        self.center = bool(center)
        self.permute_text = None if permute_text is None else int(permute_text)
        # A submodule, as in the text towers: the checkpoint holds the vectors the fit used (lmrec-eval reads them
        # from there instead of encoding again) and the run records what encoding them cost.
        self.text = text_source

    def side_information(self) -> np.ndarray:
        """The unit-norm (optionally centred) text vectors [items, width]."""
        vectors = self.text.all_items().detach().double().cpu()
        if self.permute_text is not None:
            generator = torch.Generator().manual_seed(self.permute_text)
            vectors = vectors[torch.randperm(vectors.shape[0], generator=generator)]
        if self.center:
            vectors = vectors - vectors.mean(dim=0, keepdim=True)
        return torch.nn.functional.normalize(vectors, dim=1).numpy()

    def gram(self) -> np.ndarray:
        gram = super().gram()
        if self.text_weight:
            side = self.side_information()
            gram += self.text_weight * (side @ side.T)
        return gram
