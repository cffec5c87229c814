"""Tiny random models for quick runs: the benchmarks' code paths in milliseconds instead of minutes.

A quick run checks that a benchmark still works, not what it measures, so the encoder only has to have the right
kind (a BERT-family encoder, a decoder LM) and a real tokenizer. Each model is built once per folder (seeded, so
every quick run gets the same weights) and reused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

#: Words the tiny decoder tokenizer is trained on: enough to split movie titles and genres into real tokens.
WORDS = (
    "toy story jumanji heat sabrina the of and a in to for man love night city war king summer dark return lost "
    "adventure animation children comedy drama romance fantasy action crime thriller genres tags title item"
)


def _done(folder: Path) -> bool:
    return (folder / "config.json").is_file() and any(folder.glob("*.safetensors"))


def tiny_bert(folder: Path, layers: int = 2) -> Path:
    """A random BERT (width 32, `layers` layers) with the packaged MiniLM's tokenizer, saved in `folder`."""
    folder = Path(folder)
    if _done(folder):
        return folder
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    from lmrec.encoders.resolve import packaged_minilm_path

    tokenizer = AutoTokenizer.from_pretrained(packaged_minilm_path())
    with torch.random.fork_rng():
        torch.manual_seed(0)
        config = BertConfig(
            vocab_size=tokenizer.vocab_size,
            hidden_size=32,
            num_hidden_layers=layers,
            num_attention_heads=2,
            intermediate_size=64,
            max_position_embeddings=512,
        )
        model = BertModel(config)
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(folder)
    model.save_pretrained(folder)
    return folder


def tiny_tokenizer(folder: Path) -> Any:  # a transformers.PreTrainedTokenizerFast
    """A byte-level BPE tokenizer with BOS and EOS and no pad token (as most decoders ship), saved in `folder`."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<s>", "</s>"], initial_alphabet=alphabet)
    bpe.train_from_iterator([WORDS] * 10, trainer=trainer)
    bpe.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 0)])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token="<s>", eos_token="</s>")
    tokenizer.save_pretrained(folder)
    return tokenizer


def tiny_decoder(folder: Path) -> Path:
    """A random 2-layer Llama decoder (width 32, grouped-query attention) with `tiny_tokenizer`, in `folder`."""
    return _tiny_llama(folder, causal=False)


def tiny_causal_lm(folder: Path) -> Path:
    """A random 2-layer Llama causal LM (width 32, output head tied to the embeddings) with `tiny_tokenizer`:
    what a reranker reads answer logits from."""
    return _tiny_llama(folder, causal=True)


def _tiny_llama(folder: Path, causal: bool) -> Path:
    folder = Path(folder)
    if _done(folder):
        return folder
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, LlamaModel

    tokenizer = tiny_tokenizer(folder)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        config = LlamaConfig(
            vocab_size=len(tokenizer),
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=2048 if causal else 256,  # a reranker's prompt lists 30 items
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            tie_word_embeddings=causal,
        )
        (LlamaForCausalLM if causal else LlamaModel)(config).save_pretrained(folder)
    return folder
