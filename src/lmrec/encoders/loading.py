"""Load an encoder's tokenizer and backbone: BERT-family or decoder LM, fp32/bf16/fp16, GGUF or 4-/8-bit.

transformers does the loading (including GGUF de-quantisation and bitsandbytes quantisation); what lives here is
what lmrec must decide for it: which dtype, which padding token a decoder without one pads with, whether the model
is a decoder at all (which changes the pooling and whether an end-of-sequence token is appended).
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from torch import nn

from lmrec.encoders.resolve import EncoderFiles, weights_fingerprint
from lmrec.errors import ConfigError

log = logging.getLogger(__name__)

TORCH_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def is_decoder(config: Any) -> bool:
    """A causal LM backbone (GPT-2, Llama, Qwen, SmolLM, Mistral...): its model type has a causal-LM head class
    and no masked-LM one. BERT-family models have both (BertLMHeadModel) and are encoders."""
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
        MODEL_FOR_MASKED_LM_MAPPING_NAMES,
    )

    model_type = getattr(config, "model_type", None)
    return (
        model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES
        and model_type not in MODEL_FOR_MASKED_LM_MAPPING_NAMES
        and not getattr(config, "is_encoder_decoder", False)
    )


def load_tokenizer(files: EncoderFiles, trust_remote_code: bool = False) -> Any:
    """The tokenizer, with a padding token: decoders often ship none, and batches need one (the attention mask
    keeps it out of every pooling, so which token pads does not change a vector)."""
    from transformers import AutoTokenizer

    if files.gguf_file:
        tokenizer = _converted_gguf_tokenizer(files)
    else:
        tokenizer = AutoTokenizer.from_pretrained(files.folder, trust_remote_code=trust_remote_code)
    if tokenizer.pad_token_id is None:
        fallback = tokenizer.eos_token or tokenizer.unk_token
        if fallback is None:
            raise ConfigError(
                f"the tokenizer in {files.folder} has no pad, end-of-sequence or unknown token to pad with"
            )
        tokenizer.pad_token = fallback
        log.info("tokenizer has no pad token; padding with %r (masked out of pooling)", fallback)
    return tokenizer


def _converted_gguf_tokenizer(files: EncoderFiles) -> Any:
    """A GGUF file's tokenizer, converted once and kept as a transformers tokenizer folder beside the assembled
    encoders (keyed by the GGUF file's SHA-256): transformers rebuilds it from the GGUF vocabulary on every load,
    which takes about 20 s for SmolLM2 and would be paid by every run and every `lmrec-data stats`."""
    from transformers import AutoTokenizer

    from lmrec.atomic import publish_dir
    from lmrec.cache_integrity import entry_lock, seal_dir, verified_entry
    from lmrec.encoders.assembled import encoder_cache_root

    folder = encoder_cache_root() / "gguf-tokenizers" / weights_fingerprint(files)[:32]
    with entry_lock(folder):  # content-checked like every cache entry; a damaged one is converted again
        if verified_entry(folder, "converted GGUF tokenizer"):
            return AutoTokenizer.from_pretrained(folder)
        tokenizer = AutoTokenizer.from_pretrained(files.folder, **files.load_kwargs())
        with publish_dir(folder) as tmp:
            tokenizer.save_pretrained(tmp)
            seal_dir(tmp)
    return tokenizer


def load_backbone(
    files: EncoderFiles, dtype: str = "float32", quantization: str | None = None, trust_remote_code: bool = False
) -> nn.Module:
    """The transformer without its LM head (`AutoModel`), in `dtype`, or 4-/8-bit on a GPU via bitsandbytes."""
    from transformers import AutoModel

    kwargs: dict[str, Any] = {"dtype": TORCH_DTYPES[dtype], **files.load_kwargs()}
    if quantization is not None:
        from transformers import BitsAndBytesConfig

        if files.gguf_file:
            raise ConfigError("model.encoder.quantization applies to safetensors weights, not to a GGUF file")
        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=quantization == "4bit",
            load_in_8bit=quantization == "8bit",
            bnb_4bit_quant_type="nf4",
            bnb_4bit_compute_dtype=TORCH_DTYPES[dtype] if dtype != "float32" else torch.bfloat16,
        )
        kwargs["device_map"] = {"": torch.cuda.current_device()}
    return AutoModel.from_pretrained(files.folder, trust_remote_code=trust_remote_code, **kwargs)


def special_token_frame(tokenizer: Any) -> tuple[list[int], list[int]]:
    """The ids the tokenizer puts before and after a text ([CLS]/[SEP] for BERT, BOS for Llama-style models).

    transformers 5 has no public "add special tokens to these ids"; comparing one encoding with and without them
    recovers them, so lmrec can truncate the text alone and keep its prompt whole.
    """
    with_special = tokenizer("x")["input_ids"]
    bare = tokenizer("x", add_special_tokens=False)["input_ids"]
    for start in range(len(with_special) - len(bare) + 1):
        if with_special[start : start + len(bare)] == bare:
            return with_special[:start], with_special[start + len(bare) :]
    return [], []
