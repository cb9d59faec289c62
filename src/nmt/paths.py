"""Where the pipeline keeps what each stage makes; dvc.yaml names the same paths."""

from __future__ import annotations

from pathlib import Path, PurePath

RAW = Path("data/raw")  # download
TOKENS = Path("data/tokens")  # tokenize
VOCAB = Path("data/vocab")  # vocab@<vocabulary>: one folder each
IDS = Path("data/ids")  # numericalize@<vocabulary>: one folder each
SETTINGS = Path("data/settings")  # settings@<arch>: what its train and evaluate read, resolved
MODELS = Path("models")  # train@<arch>: one package folder each
EXPORTS = Path("exports")  # export@<arch>: the CTranslate2 model folder
CHECKPOINTS = Path("checkpoints")  # train@<arch>: resumable state, not an output
LIVE = Path("dvclive")  # train@<arch>: curves
TRANSLATIONS = Path("translations")  # evaluate@<arch>
PLOTS = Path("plots")  # heatmaps@<arch>, curves
METRICS = Path("metrics")  # what experiments are compared by: DVC metrics, a few per stage
RESULTS = Path("results")  # every score and statistic, in git beside them
LOGS = Path("logs")

_MADE_BY = {RAW: "download", TOKENS: "tokenize"}
_MADE_BY_EACH = {  # stage@<name>
    VOCAB: "vocab",
    IDS: "numericalize",
    SETTINGS: "settings",
    EXPORTS: "export",
}


def model_path(arch: str) -> Path:
    """The model package folder of an architecture (`nmt.package`)."""
    return MODELS / arch


def made_by(path: str | PurePath) -> str | None:
    """The stage whose output `path` is, if any."""
    path = PurePath(path)
    if MODELS in path.parents:
        return f"train@{path.relative_to(MODELS).parts[0]}"
    for folder, stage in _MADE_BY_EACH.items():
        if folder in path.parents:
            name = path.relative_to(folder).parts[0] if path.parent != folder else None
            return f"{stage}@{name}" if name else stage
    return next((stage for folder, stage in _MADE_BY.items() if folder in path.parents), None)
