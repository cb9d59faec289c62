"""A trained model with its vocabularies, as a library: `Translator` translates lines of text
with our search, decoding as the package's evaluation did unless told otherwise; `Engine` is
what it shares with the CTranslate2 translator (`nmt.export`), so that evaluation and the
`translate` command take either. It knows no pipeline folder, plotting or progress bar."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from nmt import EOS_ID
from nmt.batching import ParallelData
from nmt.decoding import translate_corpus
from nmt.ids import backwards
from nmt.package import PackageConfig, load_model
from nmt.search import Hypothesis, SearchSettings, fit_source
from nmt.seq2seq import Seq2Seq
from nmt.vocab import Vocabulary


class Engine(Protocol):
    """A translator of lines: ours, or CTranslate2's."""

    src_vocab: Vocabulary
    config: PackageConfig

    @property
    def max_source(self) -> int | None:
        """The longest source it reads, <sos> and <eos> included; longer ones are cut."""
        ...

    @property
    def max_target(self) -> int | None:
        """The longest output it writes, <eos> included; None: any length."""
        ...

    def translate(self, lines: list[str], settings: SearchSettings) -> list[list[Hypothesis]]: ...

    def text(self, hypothesis: Hypothesis) -> str: ...


@dataclass
class Translator:
    model: Seq2Seq
    config: PackageConfig
    src_vocab: Vocabulary
    trg_vocab: Vocabulary

    @classmethod
    def load(
        cls, package: Path, arch: str | None = None, device: str | torch.device = "cpu"
    ) -> Translator:
        """The model package in `package` (models/<arch>/): weights, params, vocabularies."""
        loaded = load_model(package, arch)
        return cls(loaded.model.to(device), loaded.config, *loaded.vocabs)

    @property
    def arch(self) -> str:
        return self.config.arch

    def translate(
        self,
        lines: list[str],
        settings: SearchSettings,
        on_batch: Callable[[int], object] | None = None,
    ) -> list[list[Hypothesis]]:
        """The `settings.n_best` best hypotheses of each line, best first."""
        return self.translate_ids(self.src_vocab.encode(lines), settings, on_batch)

    def translate_ids(
        self,
        sources: Sequence[np.ndarray],
        settings: SearchSettings,
        on_batch: Callable[[int], object] | None = None,
    ) -> list[list[Hypothesis]]:
        """As `translate`, for sources numericalized by this vocabulary (framed, in order)."""
        return translate_corpus(self.model, self.model_input(sources), settings, on_batch)

    def model_input(self, sources: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Sources as the model reads them: cut to the longest it reads, perhaps reversed.
        The one place where a package's source handling is applied to what it decodes."""
        fitted = [fit_source(ids, self.max_source) for ids in sources]
        if not self.config.model.reverse_src:
            return fitted
        return [backwards(ids) for ids in fitted]

    def source_tensor(self, line: str) -> tuple[torch.Tensor, torch.Tensor]:
        """One line as the model reads it: ids [S, 1] on the model's device, and [S]."""
        ids = self.model_input(self.src_vocab.encode([line]))[0]
        device = next(self.model.parameters()).device
        return torch.from_numpy(ids.astype(np.int64)).unsqueeze(1).to(device), torch.tensor(
            [len(ids)]
        )

    def split(self, folder: Path, name: str) -> ParallelData:
        """A numericalized split (`nmt.ids`) as the model reads it, to score its loss."""
        return ParallelData.load(folder, name, self.config.model.reverse_src)

    @property
    def max_source(self) -> int | None:
        """The longest source the model reads, framing included; longer ones are cut."""
        return self.model.max_source_positions

    @property
    def max_target(self) -> int | None:
        return self.model.max_target_positions

    def text(self, hypothesis: Hypothesis) -> str:
        return self.trg_vocab.decode(hypothesis.tokens)

    def source_positions(self, line: str) -> list[str]:
        """The source tokens as the model reads them: attention's columns."""
        return self.src_vocab.words(self.model_input(self.src_vocab.encode([line]))[0].tolist())

    def output_positions(self, hypothesis: Hypothesis) -> list[str]:
        """The output tokens and the final <eos> if one was written: attention's rows."""
        steps = len(hypothesis.attention) if hypothesis.attention is not None else 0
        return self.trg_vocab.words([*hypothesis.tokens, EOS_ID][:steps])
