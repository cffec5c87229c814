"""A decoder LM read as a scorer: the hidden state at a prompt's last position, and the logits of chosen tokens.

A reranker asks one question of the model: at the end of this prompt, how likely is each answer token (a candidate's
label, or "Yes"/"No")? Those logits are the output embedding rows of the answer tokens times the last hidden state,
so only they are computed: the full vocabulary projection (49,152 rows for SmolLM2, 256,000 for Gemma) at every
position would cost more than the 30 transformer layers below it and is never read. The numbers are exactly the
model's own logits for those tokens (a test compares them with the full `AutoModelForCausalLM` output).

transformers loads the weights (safetensors, GGUF, bitsandbytes); the module wraps the loaded model in a tuning mode
(`lmrec.encoders.tuning`) and implements the `TrainableEncoder` protocol, so checkpoints leave its frozen weights
out exactly as they do for a tuned text tower's encoder.
"""

from __future__ import annotations

import functools
from typing import Any

import torch
from torch import nn

from lmrec.encoders.loading import TORCH_DTYPES, is_decoder, load_tokenizer
from lmrec.encoders.options import resolve_dtype
from lmrec.encoders.resolve import resolve_encoder, weights_fingerprint
from lmrec.encoders.tuning.base import Tuning, TuningHooks
from lmrec.errors import ConfigError


def load_causal_lm(
    name_or_path: str,
    revision: str | None = None,
    gguf_file: str | None = None,
    dtype: str = "float32",
    quantization: str | None = None,
    trust_remote_code: bool = False,
) -> tuple[Any, nn.Module, Any]:
    """(tokenizer, causal LM with its output head, the encoder files) of a decoder; an encoder-only model is
    refused (a BERT has no next-token head to read answers from)."""
    from transformers import AutoConfig, AutoModelForCausalLM, BitsAndBytesConfig

    files = resolve_encoder(name_or_path, revision, gguf_file or None)
    config = AutoConfig.from_pretrained(files.folder, trust_remote_code=trust_remote_code, **files.load_kwargs())
    if not is_decoder(config):
        raise ConfigError(
            f"model.encoder.name_or_path={name_or_path} is a {config.model_type} model, not a decoder LM: a reranker "
            "reads answer tokens from a causal LM head (e.g. model/encoder=smollm2_135m or gemma3_270m)"
        )
    kwargs: dict[str, Any] = {"dtype": TORCH_DTYPES[resolve_dtype(dtype)], **files.load_kwargs()}
    if quantization is not None:
        if files.gguf_file:
            raise ConfigError("model.encoder.quantization applies to safetensors weights, not to a GGUF file")
        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=quantization == "4bit", load_in_8bit=quantization == "8bit", bnb_4bit_quant_type="nf4"
        )
        kwargs["device_map"] = {"": torch.cuda.current_device()}
    model = AutoModelForCausalLM.from_pretrained(files.folder, trust_remote_code=trust_remote_code, **kwargs)
    return load_tokenizer(files, trust_remote_code), model, files


class AnswerScorer(TuningHooks, nn.Module):
    """A causal LM, with a tuning mode applied, that scores answer tokens at the last position of each prompt."""

    def __init__(self, tokenizer: Any, model: nn.Module, tuning: Tuning, weights_sha256: str = "") -> None:
        super().__init__()
        self.tokenizer = tokenizer
        self.tuning = tuning
        self.tuned_model = tuning.apply(model)
        self._weights_sha256 = weights_sha256
        self.eval()

    @classmethod
    def from_options(cls, options: dict[str, Any], tuning: Tuning) -> AnswerScorer:
        """From `model.encoder`'s options (`lmrec.encoders.configured.encoder_options`)."""
        keys = ("name_or_path", "revision", "gguf_file", "dtype", "quantization", "trust_remote_code")
        tokenizer, model, files = load_causal_lm(**{k: options[k] for k in keys if k in options})
        return cls(tokenizer, model, tuning, weights_fingerprint(files))

    @functools.cached_property
    def causal_lm(self) -> nn.Module:
        """The transformers causal LM inside the tuning wrapper (peft injects its layers in place)."""
        return self.tuning.base_model(self.tuned_model)

    @property
    def device(self) -> torch.device:
        return next(self.tuned_model.parameters()).device

    def last_hidden(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, past: Any = None) -> torch.Tensor:
        """[B, width]: the final layer's state at each right-padded row's last real token. `past`: the key/value
        cache of a prefix the rows continue (its length is added to the position ids)."""
        decoder = self.causal_lm.get_decoder()
        kwargs: dict[str, Any] = {"input_ids": input_ids, "attention_mask": attention_mask}
        if past is not None:
            kwargs |= {"cache": past, "use_cache": True}
        hidden = decoder(**kwargs).last_hidden_state
        last = attention_mask.sum(dim=1) - 1 - (0 if past is None else past.get_seq_length())
        return hidden[torch.arange(len(hidden), device=hidden.device), last]

    def token_logits(self, hidden: torch.Tensor, token_ids: torch.Tensor) -> torch.Tensor:
        """[B, T]: the model's logits of tokens `token_ids` [T] given last states `hidden` [B, width]; the rows of
        the output head that are read, nothing else."""
        head = self.causal_lm.get_output_embeddings()
        logits = hidden @ head.weight[token_ids].to(hidden.dtype).T
        if getattr(head, "bias", None) is not None:
            logits = logits + head.bias[token_ids]
        scaling = getattr(self.causal_lm.config, "final_logit_softcapping", None)
        if scaling:  # Gemma-2 caps its logits; read them as the model emits them
            logits = torch.tanh(logits / scaling) * scaling
        return logits.float()

    def prefix_cache(self, input_ids: torch.Tensor) -> Any:
        """The key/value cache of one prompt prefix [1, P] (no padding), for rows that all continue it."""
        decoder = self.causal_lm.get_decoder()
        return decoder(input_ids=input_ids, use_cache=True).cache

    # -- TrainableEncoder (lmrec.encoders.tuning.base): checkpoints and optimizer groups (hooks: TuningHooks) ----
    def frozen_state_keys(self) -> set[str]:
        """Weights that do not train (state-dict keys, tied copies included): the model files hold them."""
        trained = {name for name, p in self.named_parameters(remove_duplicate=False) if p.requires_grad}
        return {key for key in self.state_dict() if key not in trained}

    def base_weights_sha256(self) -> str:
        return self._weights_sha256
