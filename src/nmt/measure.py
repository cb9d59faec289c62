"""The pipeline's trained model on a split of the corpus: the evaluate and heatmaps stages and
the benchmarks that choose settings on `val` load, decode and score through here, so each
split is decoded one way."""

from __future__ import annotations

from dataclasses import dataclass

from tqdm import tqdm

from nmt import NMTError
from nmt.batching import ParallelData
from nmt.evaluation import Scorer
from nmt.ids import Sequences
from nmt.paths import IDS, RAW, VOCAB, model_path
from nmt.runtime import resolve_device, show_progress, use_threads
from nmt.search import SearchSettings
from nmt.settings import EvaluateSettings, RunSettings
from nmt.tokenization import read_lines
from nmt.translator import Translator
from nmt.vocab import load_vocab_pair


def pipeline_translator(settings: RunSettings) -> Translator:
    """The model the pipeline trained for `settings.arch`, on the device its settings name,
    checked to read the vocabulary the pipeline's ids are made of."""
    package = model_path(settings.arch)
    translator = Translator.load(package, settings.arch, resolve_device(settings.device))
    vocab_dir = VOCAB / settings.vocab
    pipeline = load_vocab_pair(vocab_dir, *settings.langs)
    if (pipeline[0].hash, pipeline[1].hash) != translator.config.vocab_hashes:
        raise NMTError(
            f"{package} was trained with other vocabularies than {vocab_dir}: restore the "
            f"pipeline's own (`dvc checkout train@{settings.arch} evaluate@{settings.arch}`) "
            f"or retrain it (`dvc repro --force train@{settings.arch}`)"
        )
    return translator


def stage_translator(arch: str) -> tuple[EvaluateSettings, Translator]:
    """What an evaluating stage starts from: its settings, torch at their thread count, and the
    pipeline's model."""
    settings = EvaluateSettings.read(arch)
    use_threads(settings.evaluate.threads, settings.threads_key)
    return settings, pipeline_translator(settings)


@dataclass
class Split:
    """A split of the corpus as numericalize wrote it, and its raw references."""

    name: str
    sources: Sequences  # framed ids, in the corpus's order
    references: list[str]

    @classmethod
    def load(cls, settings: RunSettings, name: str) -> Split:
        sources = ParallelData.load(IDS / settings.vocab, name).src
        return cls(name, sources, read_lines(RAW / f"{name}.{settings.langs[1]}"))


def decode(
    translator: Translator, split: Split, search: SearchSettings, progress: str | None = None
) -> list[str]:
    """The best translation of every sentence of the split, with a progress bar named
    `progress` on a terminal's stderr."""
    sources = [split.sources[i] for i in range(len(split.sources))]
    show = progress is not None and show_progress()
    with tqdm(total=len(sources), desc=progress, unit="sentence", disable=not show) as bar:
        found = translator.translate_ids(sources, search, bar.update)
    return [translator.text(best) for best, *_ in found]


def decode_and_score(
    translator: Translator,
    split: Split,
    search: SearchSettings,
    score: Scorer,
    progress: str | None = None,
) -> tuple[list[str], dict[str, float], dict[str, str]]:
    """The split's translations, their scores and the scores' sacreBLEU signatures."""
    texts = decode(translator, split, search, progress)
    scores, signatures = score(texts)
    return texts, scores, signatures
