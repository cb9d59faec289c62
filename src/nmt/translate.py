"""A trained model with its vocabularies, and the `translate` command built on it.

translate --arch transformer "Ein Mann fährt Fahrrad."
cat sentences.de | translate --arch gru --beam 1
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from nmt import EOS_ID, MissingInput, NMTError
from nmt.batching import ParallelData
from nmt.checkpoint import load_model
from nmt.cli import run_stage
from nmt.config import ModelParams, Params, available_archs
from nmt.decoding import Hypothesis, source_data, translate_corpus
from nmt.paths import VOCAB, model_path
from nmt.plots import plot_attention
from nmt.runtime import resolve_device
from nmt.seq2seq import Seq2Seq
from nmt.vocab import Vocabulary, load_vocab_pair


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
        model, params, (src_vocab, trg_vocab), config = load_model(package, arch)
        return cls(config["arch"], model.to(device), params, src_vocab, trg_vocab)

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
        self, data: ParallelData, beam_size: int, max_len: int, alpha: float, batch_size: int
    ) -> list[Hypothesis]:
        return translate_corpus(
            self.model,
            data,
            batch_size=batch_size,
            max_len=max_len,
            beam_size=beam_size,
            alpha=alpha,
        )

    def translate(
        self,
        lines: list[str],
        beam_size: int,
        max_len: int,
        alpha: float,
        batch_size: int = 128,
    ) -> list[Hypothesis]:
        """Hypotheses for source sentences, tokenized as the model was trained."""
        data = source_data(self.src_vocab.encode(lines), self.params.reverse_src)
        return self.translate_data(data, beam_size, max_len, alpha, batch_size)

    def text(self, hypothesis: Hypothesis) -> str:
        return self.trg_vocab.decode(hypothesis.tokens)

    def source_positions(self, line: str) -> list[str]:
        """The source as the model reads it (tokens, framed, perhaps reversed): attention's
        columns."""
        ids = self.src_vocab.encode([line])[0].tolist()
        if self.params.reverse_src:
            ids[1:-1] = ids[-2:0:-1]
        return self.src_vocab.words(ids)

    def output_positions(self, hypothesis: Hypothesis) -> list[str]:
        """The output tokens and the final <eos> if one was written: attention's rows."""
        steps = len(hypothesis.attention) if hypothesis.attention is not None else 0
        return self.trg_vocab.words([*hypothesis.tokens, EOS_ID][:steps])

    def plot(self, line: str, hypothesis: Hypothesis, path: Path) -> None:
        if hypothesis.attention is None:
            raise NMTError(f"a {self.arch!r} model has no attention to show")
        source = self.source_positions(line)
        plot_attention(source, self.output_positions(hypothesis), hypothesis.attention, path)


def read_stdin_lines() -> list[str]:
    payload = sys.stdin.buffer.read()
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as err:
        line = payload[: err.start].count(b"\n") + 1
        raise NMTError(f"standard input line {line} is not valid UTF-8") from None
    return text.splitlines()


def main() -> None:
    parser = argparse.ArgumentParser(
        description="Translate German sentences with a trained model: from the arguments, "
        "or else one sentence per line of standard input."
    )
    parser.add_argument("sentences", nargs="*", help="sentences to translate")
    parser.add_argument("--arch", choices=available_archs(), default="attention")
    parser.add_argument(
        "--model", type=Path, help="a model package folder (default: models/<arch>)"
    )
    parser.add_argument("--beam", type=int, default=5, help="beam size; 1 is greedy search")
    parser.add_argument("--length-penalty", type=float, default=0.6, help="GNMT alpha")
    parser.add_argument("--max-len", type=int, default=100, help="output tokens at most")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument(
        "--show-attention", type=Path, metavar="PNG", help="heatmap of the first sentence"
    )
    args = parser.parse_args()
    if args.beam < 1 or args.max_len < 1 or args.length_penalty < 0:
        raise NMTError("--beam and --max-len must be >= 1 and --length-penalty >= 0")
    lines = [line.strip() for line in args.sentences or read_stdin_lines()]
    translator = Translator.load(
        args.model or model_path(args.arch),
        None if args.model else args.arch,
        resolve_device(args.device),
    )
    todo = [i for i, line in enumerate(lines) if line]
    found = translator.translate(
        [lines[i] for i in todo], args.beam, args.max_len, args.length_penalty
    )
    output = [""] * len(lines)  # an empty line translates to an empty line
    for i, hypothesis in zip(todo, found, strict=True):
        output[i] = translator.text(hypothesis)
    for line in output:
        print(line)
    if args.show_attention:
        if not todo:
            raise NMTError("--show-attention needs a non-empty sentence")
        translator.plot(lines[todo[0]], found[0], args.show_attention)


def cli() -> None:
    run_stage(main, "translations not yet printed are lost")
