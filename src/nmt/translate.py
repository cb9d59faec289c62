"""A trained model with its vocabularies, and the `translate` command built on it.

translate --arch attention "ein mann fährt fahrrad ."
cat sentences.de | translate --arch gru --beam 1
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from nmt import EOS_ID, SOS_ID, NMTError
from nmt.batching import ParallelData
from nmt.checkpoint import load_model
from nmt.cli import run_stage
from nmt.config import ModelParams, Params, available_archs
from nmt.decoding import Hypothesis, source_data, translate_corpus
from nmt.paths import VOCAB, model_path
from nmt.plots import plot_attention
from nmt.runtime import resolve_device
from nmt.seq2seq import Seq2Seq
from nmt.tokenization import detokenize, tokenize
from nmt.vocab import load_vocab_pair, numericalize


@dataclass
class Translator:
    arch: str
    model: Seq2Seq
    params: ModelParams
    src_vocab: list[str]
    trg_vocab: list[str]

    @classmethod
    def load(
        cls,
        model_path: Path,
        vocab_dir: Path,
        src_lang: str,
        trg_lang: str,
        arch: str,
        device: str | torch.device = "cpu",
    ) -> Translator:
        vocabs, hashes = load_vocab_pair(vocab_dir, src_lang, trg_lang)
        model, params, _ = load_model(model_path, hashes, arch)
        return cls(arch, model.to(device), params, *vocabs)

    @classmethod
    def of_pipeline(cls, params: Params, arch: str) -> Translator:
        """The model the pipeline trained for `arch`, on the device params.yaml names."""
        data = params.data
        device = resolve_device(params.device)
        return cls.load(model_path(arch), VOCAB, data.src_lang, data.trg_lang, arch, device)

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
        sentences: list[list[str]],
        beam_size: int,
        max_len: int,
        alpha: float,
        batch_size: int = 128,
    ) -> list[Hypothesis]:
        """Hypotheses for tokenized source sentences; unknown words read as <unk>."""
        data = source_data(numericalize(sentences, self.src_vocab), self.params.reverse_src)
        return self.translate_data(data, beam_size, max_len, alpha, batch_size)

    def words(self, hypothesis: Hypothesis) -> list[str]:
        return [self.trg_vocab[i] for i in hypothesis.tokens]

    def source_positions(self, sentence: list[str]) -> list[str]:
        """The source as the model reads it (framed, perhaps reversed): attention's columns."""
        words = sentence[::-1] if self.params.reverse_src else sentence
        return [self.src_vocab[SOS_ID], *words, self.src_vocab[EOS_ID]]

    def output_positions(self, hypothesis: Hypothesis) -> list[str]:
        """The output words and the final <eos> if one was written: attention's rows."""
        steps = len(hypothesis.attention) if hypothesis.attention is not None else 0
        return [*self.words(hypothesis), self.trg_vocab[EOS_ID]][:steps]

    def plot(self, sentence: list[str], hypothesis: Hypothesis, path: Path) -> None:
        if hypothesis.attention is None:
            raise NMTError(f"a {self.arch!r} model has no attention to show")
        source = self.source_positions(sentence)
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
    parser.add_argument("--model", type=Path, help="checkpoint (default: models/<arch>.pt)")
    parser.add_argument("--vocab-dir", type=Path, default=VOCAB)
    parser.add_argument("--src-lang", default="de")
    parser.add_argument("--trg-lang", default="en")
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
    lines = args.sentences or read_stdin_lines()
    translator = Translator.load(
        args.model or model_path(args.arch),
        args.vocab_dir,
        args.src_lang,
        args.trg_lang,
        args.arch,
        resolve_device(args.device),
    )
    sentences = tokenize([line.strip() for line in lines], args.src_lang)
    todo = [i for i, sentence in enumerate(sentences) if sentence]
    found = translator.translate(
        [sentences[i] for i in todo], args.beam, args.max_len, args.length_penalty
    )
    output = [""] * len(sentences)  # an empty line translates to an empty line
    for i, hypothesis in zip(todo, found, strict=True):
        output[i] = detokenize(translator.words(hypothesis))
    for line in output:
        print(line)
    if args.show_attention:
        if not todo:
            raise NMTError("--show-attention needs a non-empty sentence")
        translator.plot(sentences[todo[0]], found[0], args.show_attention)


def cli() -> None:
    run_stage(main, "translations not yet printed are lost")
