"""The prompts a reranker reads, as token ids: a user's recent items, then the candidates or one item to judge.

Two question forms (`task.scoring`):

* `choice` (LlamaRec): the history and all candidates, each labelled with a letter (A, B, ...); the answer is read
  at the last position as a distribution over the label tokens (the verbalizer), one forward pass per user;
* `yes_no` (TALLRec): the history and one candidate; the answer is the logit of "Yes" minus that of "No", one pass
  per candidate, all continuing the user's history prefix (its key/value cache is computed once per user).

A template (`model.prompt.*`) is plain text with `{history}` and `{candidates}` (choice) or `{item}` (yes_no);
each item appears as its text cut to `model.prompt.item_tokens` tokens. With `model.prompt.chat` the text becomes
the user turn of the tokenizer's chat template, so an instruction-tuned model answers as its assistant; the answer
token is then the first token of the assistant's reply.

A prompt is assembled from token pieces (the template's fixed parts and each item's pre-tokenized text) instead of
tokenizing each rendered string: the catalogue is tokenized once, a batch of prompts costs list concatenations, and
the pieces make the prefixes exact (the history part of a yes/no prompt is the same ids for every candidate).
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from lmrec.errors import ConfigError

#: Candidate labels: the letters, as LlamaRec labels its 20 candidates A-T.
LABELS = string.ascii_uppercase
#: Where the per-prompt parts go; a template must name each field of its form exactly once.
FIELDS = {"choice": ("history", "candidates"), "yes_no": ("history", "item")}
#: Stand-ins rendered through the chat template and split on again (they cannot occur in a template).
_MARK = "\x00{}\x00"


@dataclass(frozen=True)
class PromptOptions:
    """`model.prompt`."""

    choice: str
    yes_no: str
    chat: bool = True
    item_tokens: int = 24
    answer_yes: str = "Yes"
    answer_no: str = "No"
    #: Written before an answer (e.g. " " after a template ending in "Answer:", as a base LM writes " A").
    answer_prefix: str = ""


class PromptBuilder:
    """Token ids of prompts over one catalogue, and the answer tokens a verbalizer reads."""

    def __init__(self, tokenizer: Any, item_texts: Sequence[str], options: PromptOptions) -> None:
        self.tokenizer, self.options = tokenizer, options
        if options.item_tokens < 1:
            raise ConfigError(f"model.prompt.item_tokens={options.item_tokens}; expected a positive number")
        encoded = tokenizer(list(item_texts), add_special_tokens=False)["input_ids"] if len(item_texts) else []
        #: each item's text as ids, cut to item_tokens
        self.item_ids: list[list[int]] = [ids[: options.item_tokens] for ids in encoded]
        self.newline = self.encode("\n")
        self.ends: dict[str, str] = {}  # each form's text after its last field: what an answer follows
        self.forms = {form: self._pieces(form, getattr(options, form)) for form in FIELDS}

    def encode(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"]) if text else []

    def _pieces(self, form: str, template: str) -> tuple[list[list[int]], list[str]]:
        """The template's fixed parts as ids, around its fields in order: ([part0, part1, part2], [field, field])."""
        for field in FIELDS[form]:
            if template.count("{" + field + "}") != 1:
                raise ConfigError(f"model.prompt.{form} must contain {{{field}}} exactly once; it reads: {template!r}")
        order = sorted(FIELDS[form], key=lambda f: template.index("{" + f + "}"))
        marked = template
        for field in order:
            marked = marked.replace("{" + field + "}", _MARK.format(field))
        if self.options.chat:
            if not getattr(self.tokenizer, "chat_template", None):
                raise ConfigError(
                    "model.prompt.chat=true but the tokenizer has no chat template; set model.prompt.chat=false for "
                    "a base (not instruction-tuned) model"
                )
            marked = self.tokenizer.apply_chat_template(
                [{"role": "user", "content": marked}], tokenize=False, add_generation_prompt=True
            )
        parts = [marked]
        for field in order:
            head, tail = parts[-1].split(_MARK.format(field))
            parts[-1:] = [head, tail]
        self.ends[form] = parts[-1]
        prefix = self.special_prefix() if not self.options.chat else []
        pieces = [self.encode(part) for part in parts]
        pieces[0] = prefix + pieces[0]
        return pieces, order

    def special_prefix(self) -> list[int]:
        """The beginning-of-sequence token a tokenizer puts first, if any (a chat template writes its own)."""
        with_special = self.tokenizer("x")["input_ids"]
        bare = self.tokenizer("x", add_special_tokens=False)["input_ids"]
        return list(with_special[: len(with_special) - len(bare)]) if with_special[-len(bare) :] == bare else []

    # -- answers -------------------------------------------------------------------------------------------------
    def answer_tokens(self, form: str, answers: Sequence[str]) -> torch.Tensor:
        """The token that writes each answer right after the end of a `form` prompt, as one token; distinct
        answers must have distinct tokens (else the verbalizer could not tell them apart)."""
        before = self.encode(self.ends[form])
        tokens = []
        for answer in answers:
            ids = self.encode(self.ends[form] + self.options.answer_prefix + answer)
            if ids[: len(before)] != before or len(ids) != len(before) + 1:
                raise ConfigError(
                    f"the answer {answer!r} is not one token after the prompt's end for this tokenizer; a reranker "
                    "reads one token per answer (choose other answers or another template ending)"
                )
            tokens.append(ids[-1])
        if len(set(tokens)) != len(tokens):
            raise ConfigError(f"the answers {list(answers)} share tokens for this tokenizer")
        return torch.tensor(tokens, dtype=torch.long)

    # -- prompts -------------------------------------------------------------------------------------------------
    def history_lines(self, history: Sequence[int]) -> list[int]:
        ids: list[int] = []
        for n, item in enumerate(i for i in history if i >= 0):
            ids += (self.newline if n else []) + self.encode(f"{n + 1}. ") + self.item_ids[item]
        return ids

    def candidate_lines(self, candidates: Sequence[int]) -> list[int]:
        ids: list[int] = []
        for n, item in enumerate(candidates):
            ids += (self.newline if n else []) + self.encode(f"{LABELS[n]}. ") + self.item_ids[item]
        return ids

    def _fill(self, form: str, values: dict[str, list[int]]) -> list[int]:
        pieces, order = self.forms[form]
        ids = list(pieces[0])
        for field, piece in zip(order, pieces[1:], strict=True):
            ids += values[field] + piece
        return ids

    def choice(self, history: Sequence[int], candidates: Sequence[int]) -> list[int]:
        """One prompt: the history, then the candidates labelled A, B, ... in the order given."""
        if len(candidates) > len(LABELS):
            raise ConfigError(f"task.candidates={len(candidates)}; a choice prompt labels at most {len(LABELS)}")
        lines = {"history": self.history_lines(history), "candidates": self.candidate_lines(candidates)}
        return self._fill("choice", lines)

    def yes_no_parts(self, history: Sequence[int]) -> tuple[list[int], list[int]]:
        """(prefix, after) of a user's yes/no prompts, each `prefix + item text + after`: the history comes before
        the item, so the prefix is shared by every candidate of the user."""
        pieces, order = self.forms["yes_no"]
        if order[0] != "history":
            raise ConfigError("model.prompt.yes_no must name {history} before {item} (its prefix is shared)")
        return list(pieces[0]) + self.history_lines(history) + list(pieces[1]), list(pieces[2])

    def yes_no(self, history: Sequence[int], item: int) -> list[int]:
        prefix, after = self.yes_no_parts(history)
        return prefix + self.item_ids[item] + after


def pad_right(rows: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """[len(rows), longest] ids and attention mask, right-padded (a decoder's positions then count from 0)."""
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
        mask[i, : len(row)] = 1
    return ids, mask
