"""A trained model with its vocabularies, as a library: `Translator` translates lines of text
with our search; `Engine` is what it shares with the CTranslate2 translator (`nmt.export`),
so that evaluation and the `translate` command take either."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import torch

from nmt import EOS_ID, MissingInput, NMTError
from nmt.batching import ParallelData
from nmt.checkpoint import load_model
from nmt.config import ModelParams, Params
from nmt.decoding import source_data, translate_corpus
from nmt.paths import VOCAB, model_path
from nmt.plots import plot_attention
from nmt.runtime import resolve_device
from nmt.search import Hypothesis, SearchSettings, fit_source
from nmt.seq2seq import Seq2Seq
from nmt.vocab import Vocabulary, load_vocab_pair


class Engine(Protocol):
    """A translator of lines: ours, or CTranslate2's."""

    src_vocab: Vocabulary

    @property
    def max_source(self) -> int | None:
        """The longest source it reads, <sos> and <eos> included; longer ones are cut."""
        ...

    def translate(self, lines: list[str], settings: SearchSettings) -> list[list[Hypothesis]]: ...

    def text(self, hypothesis: Hypothesis) -> str: ...


@dataclass
class Translator:
    arch: str
    model: Seq2Seq
    params: ModelParams
    src_vocab: Vocabulary
    trg_vocab: Vocabulary

    @classmethod
    def load(
        cls, package: Path, arch: str | None = None, device: str | torch.device = "cpu"
    ) -> Translator:
        """The model package in `package` (models/<arch>/): weights, params, vocabularies."""
        loaded = load_model(package, arch)
        src_vocab, trg_vocab = loaded.vocabs
        return cls(loaded.arch, loaded.model.to(device), loaded.params, src_vocab, trg_vocab)

    @classmethod
    def of_pipeline(cls, params: Params, arch: str) -> Translator:
        """The model the pipeline trained for `arch`, on the device params.yaml names, checked
        to read the vocabulary the pipeline's ids are made of."""
        package = model_path(arch)
        translator = cls.load(package, arch, resolve_device(params.device))
        vocab_dir = VOCAB / params.vocab_of(arch)
        pipeline = load_vocab_pair(vocab_dir, params.data.src_lang, params.data.trg_lang)
        if (pipeline[0].hash, pipeline[1].hash) != (
            translator.src_vocab.hash,
            translator.trg_vocab.hash,
        ):
            raise MissingInput(package, f"was trained with other vocabularies than {vocab_dir}")
        return translator

    def translate_data(
        self, data: ParallelData, settings: SearchSettings, progress: str | None = None
    ) -> list[Hypothesis]:
        """The best hypothesis of each sentence of `data` (numericalized as the model reads)."""
        return [found[0] for found in translate_corpus(self.model, data, settings, progress)]

    def translate(self, lines: list[str], settings: SearchSettings) -> list[list[Hypothesis]]:
        """The `settings.n_best` best hypotheses of each line, best first."""
        return translate_corpus(self.model, self.sources(lines), settings)

    @property
    def max_source(self) -> int | None:
        """The longest source the model reads, framing included; longer ones are cut."""
        return self.model.max_source_positions

    def text(self, hypothesis: Hypothesis) -> str:
        return self.trg_vocab.decode(hypothesis.tokens)

    def sources(self, lines: list[str]) -> ParallelData:
        """The lines as the model reads them: framed ids, cut to the longest source it reads,
        perhaps reversed."""
        encoded = [fit_source(ids, self.max_source) for ids in self.src_vocab.encode(lines)]
        return source_data(encoded, self.params.reverse_src)

    def source_positions(self, line: str) -> list[str]:
        """The source tokens as the model reads them: attention's columns."""
        return self.src_vocab.words(self.sources([line]).src[0].tolist())

    def output_positions(self, hypothesis: Hypothesis) -> list[str]:
        """The output tokens and the final <eos> if one was written: attention's rows."""
        steps = len(hypothesis.attention) if hypothesis.attention is not None else 0
        return self.trg_vocab.words([*hypothesis.tokens, EOS_ID][:steps])

    def plot(self, line: str, hypothesis: Hypothesis, path: Path) -> None:
        if hypothesis.attention is None:
            raise NMTError(f"a {self.arch!r} model has no attention to show")
        source = self.source_positions(line)
        plot_attention(source, self.output_positions(hypothesis), hypothesis.attention, path)
