"""Decoder LMs as item-text encoders: pooling, padding, prompts, EOS, layers, dtype, tuning modes, GGUF."""

from __future__ import annotations

import logging

import pytest
import torch

from lmrec.encoders.embedding_cache import embedding_key
from lmrec.encoders.pooling import last_token_positions, pool
from lmrec.encoders.text_encoder import TextEncoder
from lmrec.errors import ConfigError
from tests.encoders.decoder_fixtures import tiny_decoder

TEXTS = ["heat action crime", "toy story", "jumanji adventure children fantasy comedy drama romance", "up"]


@pytest.fixture(scope="module")
def llama_dir(tmp_path_factory):
    return tiny_decoder(tmp_path_factory.mktemp("tiny-llama"), "llama")


@pytest.fixture(scope="module")
def gpt2_dir(tmp_path_factory):
    return tiny_decoder(tmp_path_factory.mktemp("tiny-gpt2"), "gpt2")


def test_last_and_weighted_pooling_ignore_the_padding_side():
    torch.manual_seed(0)
    hidden = torch.randn(2, 5, 3)
    right = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    # The same two texts left-padded: row 0's three tokens sit at positions 2..4.
    left_hidden = hidden.clone()
    left_hidden[0, 2:] = hidden[0, :3]
    left = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]])
    assert last_token_positions(right).tolist() == [2, 4]
    assert last_token_positions(left).tolist() == [4, 4]
    assert torch.equal(pool(hidden, right, "last")[0], hidden[0, 2])  # the hand-picked last real token
    assert torch.equal(pool(left_hidden, left, "last"), pool(hidden, right, "last"))
    expected = (1 * hidden[0, 0] + 2 * hidden[0, 1] + 3 * hidden[0, 2]) / 6  # SGPT weights 1, 2, 3
    assert torch.allclose(pool(hidden, right, "weighted_mean")[0], expected)
    assert torch.allclose(pool(left_hidden, left, "weighted_mean"), pool(hidden, right, "weighted_mean"))


def test_decoder_gets_a_pad_token_an_eos_and_last_token_vectors(llama_dir):
    encoder = TextEncoder(str(llama_dir), pooling="last", max_length=32)
    tokenizer = encoder.tokenizer
    assert encoder.is_decoder and encoder.append_eos
    assert tokenizer.pad_token_id == tokenizer.eos_token_id  # the tokenizer shipped none
    ids = encoder.tokenize(TEXTS)["input_ids"]
    assert all(row[0] == tokenizer.bos_token_id and row[-1] == tokenizer.eos_token_id for row in ids)
    batched = encoder.encode(TEXTS, batch_size=3, show_progress=False)
    for row, text_ids in enumerate(ids):  # one text at a time, no padding: the last position's state
        with torch.no_grad():
            states = encoder.model(input_ids=torch.tensor([text_ids])).last_hidden_state
        assert torch.allclose(batched[row], states[0, -1], atol=1e-5)


def test_bert_models_are_encoders_and_keep_their_tokenization(tiny_bert_dir):
    encoder = TextEncoder(str(tiny_bert_dir), max_length=8)
    assert not encoder.is_decoder and not encoder.append_eos
    long_text = "a much longer text about a film with many words"
    expected = encoder.tokenizer([long_text, "up"], truncation=True, max_length=8)["input_ids"]
    assert encoder.tokenize([long_text, "up"])["input_ids"] == expected
    assert encoder.truncated == 1


def test_prompt_reaches_the_tokenizer_and_truncation_keeps_it(llama_dir):
    prompt = 'This item: "{text}" means in one word:'
    encoder = TextEncoder(str(llama_dir), pooling="last", max_length=48, prompt=prompt)
    bare = encoder.tokenizer
    prefix = bare('This item: "', add_special_tokens=False)["input_ids"]
    suffix = bare('" means in one word:', add_special_tokens=False)["input_ids"]
    long_text = " ".join(["jumanji adventure"] * 30)
    short, long = encoder.tokenize(["toy story", long_text])["input_ids"]
    text = bare("toy story", add_special_tokens=False)["input_ids"]
    assert short == [bare.bos_token_id, *prefix, *text, *suffix, bare.eos_token_id]
    assert len(long) == 48 and long[-len(suffix) - 1 : -1] == suffix and long[1 : 1 + len(prefix)] == prefix
    assert encoder.truncated == 1
    with pytest.raises(ConfigError, match="no room for the text"):
        TextEncoder(str(llama_dir), max_length=4, prompt=prompt).tokenize(["x"])
    with pytest.raises(ConfigError, match="exactly one"):
        TextEncoder(str(llama_dir), prompt="no placeholder")


def test_hidden_layer_choice(llama_dir):
    encoder = TextEncoder(str(llama_dir), pooling="mean", layer=0, append_eos=False)
    ids = encoder.tokenize(["toy story"])["input_ids"]
    vector = encoder.encode(["toy story"], show_progress=False)[0]
    with torch.no_grad():
        embedded = encoder.model.get_input_embeddings()(torch.tensor(ids))[0]
    assert torch.allclose(vector, embedded.mean(0), atol=1e-6)
    last = TextEncoder(str(llama_dir), pooling="mean", layer=-1, append_eos=False)
    default = TextEncoder(str(llama_dir), pooling="mean", append_eos=False)
    assert torch.allclose(last.encode(TEXTS, show_progress=False), default.encode(TEXTS, show_progress=False))


def test_bfloat16_weights_give_float32_vectors_close_to_fp32(llama_dir):
    full = TextEncoder(str(llama_dir), pooling="last").encode(TEXTS, show_progress=False)
    half = TextEncoder(str(llama_dir), pooling="last", dtype="bfloat16")
    assert next(half.model.parameters()).dtype == torch.bfloat16
    vectors = half.encode(TEXTS, show_progress=False)
    assert vectors.dtype == torch.float32
    assert torch.nn.functional.cosine_similarity(vectors, full).min() > 0.95


def test_cache_key_covers_pooling_layer_prompt_dtype(llama_dir):
    base = {"name_or_path": str(llama_dir), "pooling": "last", "max_length": 32}
    digests = {
        embedding_key(base | change, TEXTS, "t").digest()
        for change in ({}, {"pooling": "mean"}, {"layer": -2}, {"prompt": "{text}!"}, {"dtype": "bfloat16"})
    }
    assert len(digests) == 5


def test_quantization_without_a_gpu_is_a_clear_error(llama_dir):
    if torch.cuda.is_available():
        pytest.skip("a GPU is here")
    with pytest.raises(ConfigError, match="needs a CUDA GPU"):
        TextEncoder(str(llama_dir), quantization="4bit")
    with pytest.raises(ConfigError, match="dtype"):
        TextEncoder(str(llama_dir), dtype="float8")


def test_encoding_backs_off_on_out_of_memory(llama_dir, monkeypatch, caplog):
    encoder = TextEncoder(str(llama_dir), pooling="last")
    expected = encoder.encode(TEXTS, batch_size=4, show_progress=False)
    real_forward = encoder.forward
    sizes = []

    def forward(input_ids, attention_mask):
        sizes.append(len(input_ids))
        if len(input_ids) > 1:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real_forward(input_ids, attention_mask)

    monkeypatch.setattr(encoder, "forward", forward)
    with caplog.at_level(logging.WARNING, logger="lmrec.encoders.text_encoder"):
        vectors = encoder.encode(TEXTS, batch_size=4, show_progress=False)
    assert sizes[:3] == [4, 2, 1] and torch.allclose(vectors, expected, atol=1e-6)
    assert "retrying with batches of 2 texts" in caplog.text


@pytest.mark.parametrize("kind", ["llama", "gpt2"])
@pytest.mark.parametrize("mode", ["lora", "ia3", "adapter", "partial", "full", "prefix"])
def test_every_tuning_mode_trains_a_decoder(kind, mode, llama_dir, gpt2_dir):
    from lmrec.encoders.tuning.bottleneck import BottleneckAdapters
    from lmrec.encoders.tuning.modes import FullTuning, PartialTuning
    from lmrec.encoders.tuning.peft_methods import PeftTuning

    tunings = {
        "lora": lambda: PeftTuning("LORA", r=4, lora_alpha=8, target_modules=None),
        "ia3": lambda: PeftTuning("IA3", target_modules=None, feedforward_modules=None),
        "adapter": lambda: BottleneckAdapters(reduction_factor=4),
        "partial": lambda: PartialTuning(frozen_layers=1),
        "full": FullTuning,
        "prefix": lambda: PeftTuning("PREFIX_TUNING", task_type="FEATURE_EXTRACTION", num_virtual_tokens=3),
    }
    encoder = TextEncoder(str(llama_dir if kind == "llama" else gpt2_dir), pooling="last")
    tuning = tunings[mode]()
    encoder.model = tuning.apply(encoder.model)
    encoder.train()
    before = {name: p.detach().clone() for name, p in encoder.named_parameters()}
    trainable = {name for name, p in encoder.named_parameters() if p.requires_grad}
    assert trainable and (mode == "full" or len(trainable) < len(before))
    optimizer = torch.optim.SGD([p for p in encoder.parameters() if p.requires_grad], lr=0.5)
    ids = encoder.tokenize(TEXTS)["input_ids"]
    rows, vectors = next(encoder.batches(ids, 4))  # the no-grad path is encode; batches runs with grad here
    (vectors.pow(2).sum() + 0 * sum(p.sum() for p in encoder.parameters() if p.requires_grad)).backward()
    optimizer.step()
    changed = {name for name, p in encoder.named_parameters() if not torch.equal(p, before[name])}
    assert changed and changed <= trainable, (mode, kind, changed - trainable)


@pytest.mark.parametrize("native", [True, False])
def test_auto_dtype_follows_the_hardware_and_keys_the_cache_by_the_result(llama_dir, monkeypatch, native):
    from omegaconf import OmegaConf

    from lmrec.encoders import options
    from lmrec.encoders.configured import encoder_options

    monkeypatch.setattr(options, "native_bf16", lambda: native)
    expected = "bfloat16" if native else "float32"
    encoder = TextEncoder(str(llama_dir), pooling="last", dtype="auto")
    assert next(encoder.model.parameters()).dtype == getattr(torch, expected)
    resolved, _ = encoder_options(OmegaConf.create({"name_or_path": str(llama_dir), "dtype": "auto"}))
    assert resolved["dtype"] == expected
    base = {"name_or_path": str(llama_dir), "pooling": "last", "max_length": 32}
    other = "float32" if native else "bfloat16"  # what the same config resolves to on the other kind of machine
    assert embedding_key(base | {"dtype": resolved["dtype"]}, TEXTS, "t") != embedding_key(
        base | {"dtype": other}, TEXTS, "t"
    )


def test_native_bf16_reads_the_cpu_flags(monkeypatch, tmp_path):
    from lmrec.encoders import options

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for flags, expected in (("fpu sse avx512f avx512_bf16", True), ("fpu sse amx_bf16", True), ("fpu sse avx2", False)):
        cpuinfo = tmp_path / "cpuinfo"
        cpuinfo.write_text(f"processor\t: 0\nflags\t\t: {flags}\n")
        monkeypatch.setattr(options, "Path", lambda _path, f=cpuinfo: f)
        options.native_bf16.cache_clear()
        assert options.native_bf16() is expected
    options.native_bf16.cache_clear()
