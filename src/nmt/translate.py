"""The `translate` command: a trained model (`nmt.translator`, or CTranslate2's export)
over the command line's sentences, a file, or standard input.

translate --arch transformer "Ein Mann fährt Fahrrad."
cat sentences.de | translate --arch gru --beam 1
translate-server --model models/transformer --model models/attention   # `nmt.serve`
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import select
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

import torch
from tqdm import tqdm

from nmt import MissingInput, NMTError
from nmt.cli import run_stage
from nmt.config import EvaluateParams, available_archs
from nmt.engine_flags import add_engine_flags, export_beside
from nmt.io import atomic_path
from nmt.package import DECODING, WEIGHTS, Decoding
from nmt.paths import EXPORTS, model_path
from nmt.runtime import resolve_device, show_progress
from nmt.search import Hypothesis, SearchSettings
from nmt.translator import Engine, Translator

SEARCH_FLAGS = {  # SearchSettings' fields, as this command's options
    "beam_size": "--beam",
    "n_best": "--n-best",
    "length_penalty": "--length-penalty",
    "max_len": "--max-len",
    "batch_size": "--batch-size",
}


class LineReader:
    """Lines of a file descriptor as they arrive: `batches` yields what is ready, up to `size`
    lines, without waiting for more, so a translation is printed while input still comes."""

    def __init__(self, fd: int, name: str):
        self.fd, self.name, self.pending, self.number = fd, name, b"", 0

    def _waiting(self) -> bool:
        return b"\n" in self.pending or bool(select.select([self.fd], [], [], 0)[0])

    def _line(self) -> str | None:
        while b"\n" not in self.pending:
            chunk = os.read(self.fd, 1 << 16)
            if not chunk:
                break
            self.pending += chunk
        if not self.pending:
            return None
        raw, _, self.pending = self.pending.partition(b"\n")
        self.number += 1
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise NMTError(f"{self.name} line {self.number} is not valid UTF-8") from None
        return line.removeprefix("\ufeff") if self.number == 1 else line  # a text editor's BOM

    def batches(self, size: int) -> Iterator[list[str]]:
        batch: list[str] = []
        while (line := self._line()) is not None:
            batch.append(line)
            if len(batch) >= size or not self._waiting():
                yield batch
                batch = []
        if batch:
            yield batch


def with_progress(batches: Iterable[list[str]], path: Path) -> Iterator[list[str]]:
    """The batches of a file's lines, with a bar of the lines done on a terminal's stderr."""
    with path.open("rb") as lines:
        total = sum(1 for _ in lines)
    with tqdm(total=total, desc="translate", unit="line", disable=not show_progress()) as bar:
        for batch in batches:
            yield batch
            bar.update(len(batch))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Translate German sentences with a trained model: from the arguments, "
        "or else one sentence per line of the input file or standard input, printed as "
        "they are translated. A sentence longer than the model reads (the Transformer's "
        "max_positions) is cut to its first tokens and translated, with a warning on "
        "standard error naming its line. `translate-server --help`: the models over HTTP, "
        "and the attention explorer."
    )
    parser.add_argument("sentences", nargs="*", help="sentences to translate")
    parser.add_argument("--arch", choices=available_archs(), default="attention")
    parser.add_argument(
        "--model", type=Path, help="a model package folder (default: models/<arch>)"
    )
    parser.add_argument("-i", "--input", type=Path, help="read sentences from this file")
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        help="write translations to this file, whole or not at all (its folders are created; "
        "a symbolic link's target is written; a device or FIFO is written as it comes)",
    )
    measured = " (default: as the package's evaluation decoded, decoding.json)"
    parser.add_argument("--beam", type=int, help="beam size; 1 is greedy search" + measured)
    parser.add_argument("--length-penalty", type=float, help="GNMT alpha" + measured)
    parser.add_argument("--max-len", type=int, help="output tokens at most" + measured)
    parser.add_argument(
        "--batch-size",
        type=int,
        default=EvaluateParams().batch_size,
        help="sentences decoded together",
    )
    parser.add_argument(
        "--n-best",
        type=int,
        default=1,
        help="hypotheses per sentence, best first (<= the beam size)",
    )
    parser.add_argument(
        "--output-format",
        choices=("text", "jsonl"),
        default="text",
        help="text: the translations, --n-best lines per sentence; jsonl: one object per "
        "sentence with its source, hypotheses and their log-probabilities (scores)",
    )
    parser.add_argument(
        "--attention",
        action="store_true",
        help="jsonl: add the best hypothesis's attention weights (attention models)",
    )
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    add_engine_flags(
        parser, "ctranslate2: the Transformer exported by stage export@transformer (exports/<arch>)"
    )
    parser.add_argument(
        "--show-attention", type=Path, metavar="PNG", help="heatmap of the first sentence"
    )
    args = parser.parse_args()
    if args.sentences and args.input:
        raise NMTError("give sentences or --input, not both")
    if args.input and args.input.is_dir():
        raise NMTError(f"--input {args.input} is a folder; name a file")
    if args.attention and args.output_format != "jsonl":
        raise NMTError("--attention needs --output-format jsonl")
    if args.engine == "ctranslate2" and (args.attention or args.show_attention):
        raise NMTError("--attention and --show-attention need --engine pytorch")
    if args.show_attention and args.show_attention.is_dir():
        raise NMTError(f"--show-attention {args.show_attention} is a folder; name a PNG file")
    return args


def search(args: argparse.Namespace, decoding: Decoding, max_target: int | None) -> SearchSettings:
    """The package's search with the options given, each error named as its option; its
    length at most what the model writes."""
    if max_target is not None:
        if args.max_len is not None and args.max_len > max_target:
            raise NMTError(
                f"--max-len must be at most the model's {max_target}, got {args.max_len}"
            )
        decoding = decoding.model_copy(update={"max_len": min(decoding.max_len, max_target)})
    try:
        return decoding.search(
            args.beam, args.length_penalty, args.max_len, args.batch_size, args.n_best
        )
    except NMTError as err:
        message = str(err)
        for name, flag in SEARCH_FLAGS.items():
            message = message.replace(name, flag)
        raise NMTError(message) from None


def device_of(name: str) -> torch.device:
    try:
        return resolve_device(name)
    except NMTError:
        raise NMTError(
            f"--device must be auto, cpu, or cuda[:N] on a machine with a CUDA GPU, got {name!r}"
        ) from None


def formatted(
    translator: Engine,
    line: str,
    hypotheses: list[Hypothesis],
    args: argparse.Namespace,
) -> str:
    """The output lines of one source line: an empty line gives empty translations."""
    texts = [translator.text(h) for h in hypotheses]
    if args.output_format == "text":
        return "".join(f"{text}\n" for text in texts or [""] * args.n_best)
    record: dict[str, object] = {
        "source": line,
        "hypotheses": texts,
        "scores": [h.score for h in hypotheses],
    }
    if args.attention:
        best = hypotheses[0].attention if hypotheses else None
        record["attention"] = None if best is None else best.tolist()
    return json.dumps(record, ensure_ascii=False) + "\n"


def warn_cut(translator: Engine, numbered: dict[int, str], where: str) -> None:
    """A warning for each line (by its number) that is longer than the model reads."""
    limit = translator.max_source
    if limit is None:
        return
    sources = translator.src_vocab.encode(list(numbered.values()))
    for number, ids in zip(numbered, sources, strict=True):
        if len(ids) > limit:
            print(
                f"warning: {where} line {number} has {len(ids)} positions, more than the "
                f"model's {limit}: translated its first {limit - 2} tokens",
                file=sys.stderr,
            )


@contextlib.contextmanager
def output_errors(path: Path | None) -> Iterator[None]:
    """A failed write to --output (a full disk, /dev/full) as one line."""
    try:
        yield
    except OSError as err:
        if (
            path is None
            or err.filename not in (None, str(path))
            or isinstance(err, BrokenPipeError)
        ):
            raise
        raise NMTError(f"cannot write {path}: {err.strerror}") from None


def main() -> None:
    args = parse_args()
    translator: Engine
    if args.engine == "ctranslate2":
        # Imported here: the stages that import this module stay free of CTranslate2 and
        # of the Transformer's module.
        from nmt.export import CTranslate2Translator

        folder = args.model or EXPORTS / args.arch
        if (folder / WEIGHTS).is_file():  # our package, not its export
            raise NMTError(
                f"{folder} is a PyTorch model package; --engine ctranslate2 reads its export: "
                f"--model {export_beside(folder)} (`dvc repro export@transformer` writes it)"
            )
        translator = CTranslate2Translator.load(folder, args.compute_type)
    else:
        translator = Translator.load(
            args.model or model_path(args.arch),
            None if args.model else args.arch,
            device_of(args.device),
        )
    settings = search(args, translator.config.search_defaults, translator.max_target)
    if translator.config.decoding is None:
        print(
            f"note: the model was never evaluated (no {DECODING}): beam {settings.beam_size}, "
            f"length penalty {settings.length_penalty:g}, max length {settings.max_len}",
            file=sys.stderr,
        )
    if args.sentences:
        batches: Iterable[list[str]] = [args.sentences]
        where = "argument"
    elif args.input:
        if not args.input.is_file():
            raise MissingInput(args.input)
        where = str(args.input)
        reader = LineReader(os.open(args.input, os.O_RDONLY), where)
        batches = with_progress(reader.batches(args.batch_size), args.input)
    else:
        where = "standard input"
        batches = LineReader(sys.stdin.fileno(), where).batches(args.batch_size)
    seen = 0  # lines before this batch
    with contextlib.ExitStack() as stack, output_errors(args.output):
        out = sys.stdout
        if args.output:  # complete or absent: written beside, renamed at the end
            tmp = stack.enter_context(atomic_path(args.output))
            out = stack.enter_context(tmp.open("w", encoding="utf-8"))
        first: tuple[str, Hypothesis] | None = None
        for batch in batches:
            lines = [line.strip() for line in batch]
            todo = [i for i, line in enumerate(lines) if line]
            warn_cut(translator, {seen + i + 1: lines[i] for i in todo}, where)
            seen += len(lines)
            found = translator.translate([lines[i] for i in todo], settings)
            output: list[list[Hypothesis]] = [[] for _ in lines]  # none for an empty line
            for i, hypotheses in zip(todo, found, strict=True):
                output[i] = hypotheses
            for line, hypotheses in zip(lines, output, strict=True):
                out.write(formatted(translator, line, hypotheses, args))
            out.flush()
            if first is None and todo:
                first = lines[todo[0]], found[0][0]
    if args.show_attention:
        if first is None:
            raise NMTError("--show-attention needs a non-empty sentence")
        assert isinstance(translator, Translator)  # parse_args refused the other engine
        from nmt.plots import plot_translation  # here: matplotlib only when drawing

        plot_translation(translator, *first, args.show_attention)


def cli() -> None:
    run_stage(main, "translations not yet printed are lost")
