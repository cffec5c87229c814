"""Tiny random decoder LMs (Llama, GPT-2) with a tiny BPE tokenizer that, like many decoders', has no pad token."""

from __future__ import annotations

from pathlib import Path

WORDS = (
    "heat toy story jumanji grumpier old men waiting to exhale father of the bride part ii sabrina tom and huck "
    "sudden death goldeneye american president dracula dead and loving it balto nixon cutthroat island casino "
    "action crime comedy drama romance adventure children fantasy genres tags this item means in one word"
)


def tiny_tokenizer(folder: Path):
    """A byte-level BPE tokenizer trained on a few words, with BOS/EOS and no pad token."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300, special_tokens=["<s>", "</s>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tokenizer.train_from_iterator([WORDS] * 20, trainer=trainer)
    tokenizer.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 0)])
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token="<s>", eos_token="</s>")
    fast.save_pretrained(folder)
    return fast


def tiny_decoder(folder: Path, kind: str = "llama") -> Path:
    import torch
    from transformers import GPT2Config, GPT2Model, LlamaConfig, LlamaModel

    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = tiny_tokenizer(folder)
    torch.manual_seed(0)
    if kind == "llama":
        config = LlamaConfig(
            vocab_size=len(tokenizer),
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=128,
            bos_token_id=0,
            eos_token_id=1,
        )
        LlamaModel(config).save_pretrained(folder)
    else:
        config = GPT2Config(vocab_size=len(tokenizer), n_embd=32, n_layer=2, n_head=4, n_positions=128)
        GPT2Model(config).save_pretrained(folder)
    return folder
