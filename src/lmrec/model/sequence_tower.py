"""The sequence user tower: a causal Transformer over a user's chronological item vectors (SASRec)."""

from __future__ import annotations

import torch
from torch import nn

from lmrec.config.arguments import BuildFacts, provides
from lmrec.data.sequences import PAD, UserSequences
from lmrec.errors import ConfigError
from lmrec.model.user_towers import ItemLookup, UserTower


class SequenceUserTower(UserTower):
    """A causal Transformer over the item vectors of a user's chronological history (SASRec, Kang & McAuley 2018).

    Each position adds a learned position embedding to its item's vector (whatever the item tower: ID, frozen or
    tuned text, hybrid), and attends to itself and the positions before it only, so the output at position t is
    a user vector that has read items 1..t: next-item training predicts every position's next item in one pass
    (`lmrec.tasks.next_item`). Sequences are left-padded (`lmrec.data.sequences`), so the most recent item always
    has the last position; `pooling=last` takes that output, `mean` averages the outputs of the real items.

    In the `ranking` task a user is their training sequence (the last `max_length` training items), like the
    history tower's mean but order-aware. The Transformer layers are torch's `nn.TransformerEncoderLayer`
    (post-norm, as SASRec and RecBole's SASRec; `norm_first` for pre-norm); one `dropout` serves the attention
    weights and the hidden states, as torch's layer has one.
    """

    def __init__(
        self,
        train_sequences: UserSequences,
        dim: int,
        max_length: int = 50,
        layers: int = 2,
        heads: int = 2,
        inner: int = 256,
        dropout: float = 0.5,
        activation: str = "gelu",
        pooling: str = "last",
        norm_first: bool = False,
        init_std: float = 0.02,
    ) -> None:
        super().__init__()
        if isinstance(max_length, bool) or int(max_length) < 1:
            raise ConfigError(f"model.user_tower.max_length={max_length}; expected a positive number of items")
        if int(layers) < 1 or int(heads) < 1 or int(inner) < 1:
            raise ConfigError(
                f"model.user_tower layers={layers}, heads={heads}, inner={inner}; each must be a positive integer"
            )
        if dim % int(heads):
            raise ConfigError(f"model.user_tower.heads={heads} must divide model.dim={dim}")
        if not 0.0 <= float(dropout) < 1.0:
            raise ConfigError(f"model.user_tower.dropout={dropout}; expected a fraction in [0, 1)")
        if pooling not in ("last", "mean"):
            raise ConfigError(f"model.user_tower.pooling={pooling!r}; expected 'last' or 'mean'")
        if activation not in ("gelu", "relu"):
            raise ConfigError(f"model.user_tower.activation={activation!r}; expected 'gelu' or 'relu'")
        self.max_length, self.pooling = int(max_length), pooling
        self.positions = nn.Embedding(self.max_length, dim)
        self.norm = nn.LayerNorm(dim, eps=1e-12)
        self.dropout = nn.Dropout(float(dropout))
        self.layers = nn.ModuleList(
            nn.TransformerEncoderLayer(
                dim,
                int(heads),
                int(inner),
                float(dropout),
                activation=activation,
                batch_first=True,
                norm_first=bool(norm_first),
                layer_norm_eps=1e-12,
            )
            for _ in range(int(layers))
        )
        self._init_weights(float(init_std))
        users = torch.arange(train_sequences.num_users)
        self.register_buffer("train_inputs", train_sequences.last(users, self.max_length), persistent=False)

    def _init_weights(self, std: float) -> None:
        """Normal(0, std) weights and zero biases for every linear map and embedding (SASRec's and BERT's)."""
        for module in self.modules():
            if isinstance(module, nn.Linear | nn.Embedding):
                nn.init.normal_(module.weight, std=std)
                if isinstance(module, nn.Linear) and module.bias is not None:
                    nn.init.zeros_(module.bias)
        for layer in self.layers:
            nn.init.zeros_(layer.self_attn.in_proj_bias)

    # -- the UserTower contract (ranking task): the user is their training sequence -------------------------
    #: Whether the tower reads sequences the task gives (`lookup_sequences`, `encode`, `pool`): next-item needs it.
    reads_sequences = True

    new_users = None

    def lookup(self, users: torch.Tensor) -> ItemLookup:
        return self.lookup_sequences(self.train_inputs[users], users)

    def lookup_histories(self, histories: list[torch.Tensor]) -> ItemLookup:
        """Users given by their items, oldest first: their last `max_length` items, left-padded, as for a training
        user's sequence."""
        padded = torch.full((len(histories), self.max_length), PAD, dtype=torch.long)
        for row, history in enumerate(histories):
            recent = history[-self.max_length :]
            if len(recent):
                padded[row, -len(recent) :] = recent
        return self.lookup_sequences(padded)

    def forward(self, users: torch.Tensor, lookup: ItemLookup, item_vectors: torch.Tensor) -> torch.Tensor:
        return self.pool(self.encode(lookup, item_vectors), lookup)

    # -- sequences given by the task (next-item prediction) ----------------------------------------------------
    def lookup_sequences(self, sequences: torch.Tensor, users: torch.Tensor | None = None) -> ItemLookup:
        """The items of left-padded sequences [B, L <= max_length]; padding looks up item 0 and is masked.
        (`users` is for towers that add per-user vectors; this one reads the items only.)"""
        if sequences.shape[-1] > self.max_length:
            sequences = sequences[:, -self.max_length :]
        real = sequences >= 0
        return ItemLookup(sequences.clamp_min(0), real)

    def encode(self, lookup: ItemLookup, item_vectors: torch.Tensor) -> torch.Tensor:
        """[B, L, dim]: the output at each position, having read that position and the ones before it."""
        real = lookup.layout
        length = real.shape[1]
        positions = self.positions.weight[self.max_length - length :]
        hidden = item_vectors * real.unsqueeze(-1).to(item_vectors.dtype) + positions
        hidden = self.dropout(self.norm(hidden))
        mask = attention_mask(real, self.layers[0].self_attn.num_heads, hidden.dtype)
        for layer in self.layers:
            hidden = layer(hidden, src_mask=mask)
        return hidden

    def pool(self, states: torch.Tensor, lookup: ItemLookup) -> torch.Tensor:
        """The user vector [B, dim] from the outputs at every position."""
        if self.pooling == "last":
            return states[:, -1]
        weights = lookup.layout.to(states.dtype).unsqueeze(-1)
        return (states * weights).sum(1) / weights.sum(1).clamp_min(1)


def attention_mask(real: torch.Tensor, heads: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Additive mask [B * heads, L, L]: position t attends to the real positions <= t, and to itself.

    A padding position attends to itself only: a query with every key masked has a softmax of NaN (torch's fused
    inference path gives NaN even with finite mask values), and the next layer would carry it into real positions
    through 0 * NaN. Its output is never read: real positions do not attend to padding, and pooling skips it.
    """
    length = real.shape[1]
    causal = torch.ones(length, length, dtype=torch.bool, device=real.device).tril()
    itself = torch.eye(length, dtype=torch.bool, device=real.device)
    allowed = (causal.unsqueeze(0) & real.unsqueeze(1)) | itself  # [B, L(query), L(key)]
    blocked = torch.zeros(allowed.shape, device=real.device, dtype=dtype).masked_fill(~allowed, torch.finfo(dtype).min)
    return blocked.repeat_interleave(heads, dim=0)


@provides("train_sequences")
def _train_sequences(facts: BuildFacts) -> UserSequences:
    """Each user's training items in time order (never validation or test)."""
    return facts.datamodule.train_sequences()
