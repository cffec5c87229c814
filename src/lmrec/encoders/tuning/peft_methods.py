"""Tuning through the peft library: LoRA, AdaLoRA, IA3, prefix tuning and any other peft method for encoders."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from lmrec.encoders.tuning.base import Tuning, freeze_unused_pooler
from lmrec.errors import ConfigError


class PeftTuning(Tuning):
    """Any peft method that applies to an encoder-only model, configured by its peft config fields.

    `peft_type` is peft's name for the method (LORA, ADALORA, IA3, PREFIX_TUNING, ...); the other keys are that
    method's config fields, passed through unchanged, so every peft option is available from the command line.
    """

    caches_embeddings = False

    @property
    def mergeable(self) -> bool:  # LoRA-type updates fold into the base weights
        return "LORA" in self.peft_type

    def __init__(self, peft_type: str, name: str | None = None, **options: Any) -> None:
        import peft

        self.peft_type = str(peft_type).upper()
        self.name = name or self.peft_type.lower()
        if self.peft_type == "ADALORA" and not options.get("total_step"):
            # A placeholder so peft's config check passes; on_fit_start sets the trainer's real step count.
            options["total_step"] = 1_000_000
        try:
            self.config = peft.get_peft_config({"peft_type": self.peft_type, **options})
        except (KeyError, TypeError, ValueError) as err:
            raise ConfigError(f"model.tuning ({self.peft_type}): {err}") from None

    def apply(self, model: nn.Module) -> nn.Module:
        import peft

        try:
            tuned = peft.get_peft_model(model, self.config)
        except (ValueError, TypeError, AttributeError) as err:
            raise ConfigError(
                f"model.tuning ({self.peft_type}) cannot be applied to {type(model).__name__}: {err}"
            ) from None
        freeze_unused_pooler(tuned)
        return tuned

    def on_fit_start(self, model: nn.Module, total_steps: int) -> None:
        if self.peft_type != "ADALORA":
            return
        config = self.config
        if config.tinit >= total_steps - config.tfinal:
            raise ConfigError(
                f"model.tuning: AdaLoRA needs tinit ({config.tinit}) < total steps ({total_steps}) - tfinal "
                f"({config.tfinal}); lower tinit/tfinal or train longer"
            )
        # peft reads total_step from the live config object when it schedules the rank budget.
        model.peft_config["default"].total_step = int(total_steps)

    def after_optimizer_step(self, model: nn.Module, global_step: int) -> None:
        if self.peft_type == "ADALORA":
            model.base_model.update_and_allocate(global_step)

    def regularization(self, model: nn.Module) -> torch.Tensor | None:
        """AdaLoRA's orthogonality penalty on P and Q.

        peft adds it only when the wrapped model returns a loss, which an encoder-only BERT never does, so the
        same term is computed here.
        """
        if self.peft_type != "ADALORA" or self.config.orth_reg_weight <= 0:
            return None
        terms = []
        for name, weight in model.named_parameters():
            if ("lora_A" in name or "lora_B" in name) and weight.requires_grad:
                product = weight @ weight.T if "lora_A" in name else weight.T @ weight
                identity = torch.eye(product.shape[0], device=weight.device, dtype=product.dtype)
                terms.append(torch.norm(product - identity, p="fro"))
        return self.config.orth_reg_weight * torch.stack(terms).mean() if terms else None

    def base_model(self, model: nn.Module) -> nn.Module:
        return model.get_base_model()

    def export(self, model: nn.Module, folder: Path, *, base_name: str, merge: bool = False) -> None:
        """A peft adapter folder (`PeftModel.from_pretrained(AutoModel.from_pretrained(base), folder)`); with
        `merge`, also `merged/`, the update folded into the weights (a plain transformers model)."""
        model.peft_config["default"].base_model_name_or_path = base_name
        model.save_pretrained(folder)
        if merge:
            model.merge_and_unload().save_pretrained(folder / "merged")
