"""The results tables of README.md and docs/results.md, rendered from what `dvc repro` wrote, so
that no number in them is typed by hand and a test can hold them equal to the metrics.

    python -m nmt.report           # print the generated blocks
    python -m nmt.report --write   # rewrite them in README.md and docs/results.md (`make results`)

A block sits between `<!-- <name>:start -->` and `<!-- <name>:end -->`. PPL, BLEU and chrF are
rounded to 2 decimals, losses to 3, parameters are whole numbers with thousands separators and
times whole minutes. The tables name the commit of `metrics/` and the CPU the run timed by
`make repro` (bench/results/repro_time.json) ran on; commit `metrics/` first, then run
`make results`, since a table cannot name the commit that contains it. No stage imports this
module: the tables change with the metrics, never the other way round.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nmt import MissingInput, NMTError
from nmt.cli import run_stage
from nmt.config import load_params
from nmt.io import write_text
from nmt.paths import METRICS, RESULTS
from nmt.timing import REPRO_TIME

TEST_SET = "test_2016_flickr"  # the README's table, and the one the DVC metrics keep
README, RESULTS_DOC = Path("README.md"), Path("docs/results.md")
# Published numbers, typed once: the seed's report (test PPL) and the classic tutorials'
# (test PPL, and tokenized BLEU where they give one).
SEED_REPORT = {"lstm": "51.57"}
TUTORIAL = {
    "lstm": "PPL ≈ 44\N{EN DASH}52",
    "gru": "PPL ≈ 35\N{EN DASH}38",
    "attention": "PPL ≈ 24\N{EN DASH}26, BLEU ≈ 28",
    "transformer": "BLEU ≈ 36.5",
}


@dataclass(frozen=True)
class Run:
    """What one reproduction left behind, and what params.yaml's recipe asks for."""

    archs: tuple[str, ...]
    recipe: dict[str, tuple[int, int]]  # arch: (train.epochs, train.patience) of params.yaml
    train: dict[str, dict[str, Any]]  # metrics/train_<arch>.json
    test: dict[str, dict[str, Any]]  # metrics/eval_<arch>.json: test_2016_flickr, beam
    results: dict[str, dict[str, Any]]  # results/eval_<arch>.json: every test set and search
    times: dict[str, Any]  # bench/results/repro_time.json
    source: str  # which commit's metrics/ these are, in words (`metrics_source`)


def _read(path: Path, made_by: str) -> dict[str, Any]:
    if not path.is_file():
        raise MissingInput(path, f"not found: {made_by} writes it")
    return json.loads(path.read_text(encoding="utf-8"))


def metrics_source(root: Path) -> str:
    """The last commit that changed metrics/, and whether the files are newer than it."""

    def git(*args: str) -> str:
        try:
            done = subprocess.run(
                ["git", *args], cwd=root, capture_output=True, text=True, check=True
            )
        except (OSError, subprocess.CalledProcessError) as err:
            problem = getattr(err, "stderr", "") or str(err)
            raise NMTError(
                f"git cannot name the commit of {root / METRICS}: {problem.strip()}"
            ) from None
        return done.stdout.strip()

    commit = git("log", "-1", "--format=%h", "--", str(METRICS))
    if not commit:
        raise NMTError(f"no commit has {root / METRICS} yet: commit it, then run `make results`")
    if git("status", "--porcelain", "--", str(METRICS)):
        return f"`metrics/` with changes not yet committed after commit `{commit}`"
    return f"`metrics/` of commit `{commit}`"


def load_run(root: Path, source: str | None = None) -> Run:
    """The metrics files under `root`; a missing one stops with one line naming its stage.
    `source` says where they come from (default: `metrics_source`, from git)."""
    params = load_params(root / "params.yaml")
    archs = tuple(params.archs)
    recipe = {}
    for arch in archs:
        train = params.train_params(arch)
        recipe[arch] = (train.epochs, train.patience)
    return Run(
        archs=archs,
        recipe=recipe,
        train={
            a: _read(root / METRICS / f"train_{a}.json", f"`dvc repro train@{a}`") for a in archs
        },
        test={
            a: _read(root / METRICS / f"eval_{a}.json", f"`dvc repro evaluate@{a}`") for a in archs
        },
        results={
            a: _read(root / RESULTS / f"eval_{a}.json", f"`dvc repro evaluate@{a}`") for a in archs
        },
        times=_read(root / REPRO_TIME, "`make repro` (nmt.lanes)"),
        source=source or metrics_source(root),  # after the files: a missing one is the news
    )


def minutes(seconds: float) -> str:
    hours, rest = divmod(round(seconds / 60), 60)
    return f"{hours} h {rest:02d} min" if hours else f"{rest} min"


def provenance(run: Run) -> str:
    """Which commit's metrics, and the machines and time of the reproduction behind them, as
    `make repro` or bench/repro_time.py timed it (with how many lanes ran at once, where more
    than one: their stages' times overlap)."""
    segments = run.times.get("segments", [run.times])  # older files: one run, described on top
    lanes: dict[str, int] = {}  # each machine once, with the most lanes it ran at once
    for s in segments:
        machine = (
            f"{s['cpu']} ({', '.join(s['flags']) or 'no AVX2'}), torch {s['torch']}, "
            f"{s['torch_threads']} thread{'s' * (s['torch_threads'] != 1)}"
        )
        lanes[machine] = max(lanes.get(machine, 1), s.get("lanes", 1))
    machines = [m + (f", up to {n} lanes at once" if n > 1 else "") for m, n in lanes.items()]
    unfinished = "" if run.times.get("complete", True) else ", not finished"
    return (
        f"{run.source}; the reproduction ran on {' then '.join(machines)}: "
        f"{minutes(run.times['total_seconds'])} in all{unfinished}"
    )


def kept(train: dict[str, Any]) -> str:
    """The epochs behind the model file: the best one, or the mean of the last few."""
    averaged = train.get("averaged_epochs")
    return f"mean of last {averaged}" if averaged else str(train["best_epoch"])


def recipe_note(run: Run) -> str:
    """A line naming the architectures trained for other epochs than the recipe's; empty when
    every run is the recipe's. Early stopping (patience) may end a recipe's run sooner."""
    ran: dict[int, dict[int, list[str]]] = {}  # epochs run: {the recipe's epochs: archs}
    for arch in run.archs:
        epochs, best = run.train[arch]["epochs"], run.train[arch]["best_epoch"]
        recipe, patience = run.recipe[arch]
        stopped = bool(patience) and epochs < recipe and epochs - best >= patience
        if epochs != recipe and not stopped:
            ran.setdefault(epochs, {}).setdefault(recipe, []).append(f"`{arch}`")
    parts = [
        f"{epochs} epoch{'s' * (epochs != 1)} while params.yaml's recipe trains "
        + " or ".join(f"{recipe} ({', '.join(archs)})" for recipe, archs in recipes.items())
        for epochs, recipes in ran.items()
    ]
    if not parts:
        return ""
    return (
        f"**Not the full recipe:** the committed metrics come from {'; '.join(parts)}; "
        "`make repro` trains the recipe."
    )


def results_table(run: Run) -> str:
    """The README's table: test_2016_flickr with beam search, beside the published numbers."""
    lines = [
        f"{TEST_SET}, beam search; {provenance(run)}.",
        "",
        "| arch | parameters | test PPL | sacreBLEU | tokenized BLEU | chrF | epochs run / kept "
        "| train time | the seed's report (PPL) | classic tutorial |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for arch in run.archs:
        train, test = run.train[arch], run.test[arch][TEST_SET]
        seconds = run.times["stages"].get(f"train@{arch}")
        lines.append(
            f"| `{arch}` | {train['parameters']:,} | {test['ppl']:.2f} | {test['bleu']:.2f} "
            f"| {test['bleu_tokenized']:.2f} | {test['chrf']:.2f} "
            f"| {train['epochs']} / {kept(train)} "
            f"| {'—' if seconds is None else minutes(seconds)} "
            f"| {SEED_REPORT.get(arch, '—')} | {TUTORIAL.get(arch, '—')} |"
        )
    note = recipe_note(run)
    return "\n".join([*lines, *(["", note] if note else [])])


def per_test_set_tables(run: Run) -> str:
    """docs/results.md's tables: every test set, greedy and beam search."""
    sets = list(
        dict.fromkeys(s for arch in run.archs for s in run.results[arch] if s != "signatures")
    )
    signatures = run.results[run.archs[0]]["signatures"]
    lines = [
        f"Every test set, from `results/eval_<arch>.json`; {provenance(run)}. sacreBLEU "
        f"signatures: BLEU `{signatures['bleu']}`, tokenized BLEU `{signatures['bleu_tokenized']}`"
        f", chrF `{signatures['chrf']}`."
    ]
    for name in sets:
        lines += [
            "",
            f"#### {name}",
            "",
            "| arch | test loss | test PPL | BLEU greedy | BLEU beam | tokenized greedy "
            "| tokenized beam | chrF greedy | chrF beam |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for arch in run.archs:
            result = run.results[arch].get(name)
            if result is None:
                lines.append(f"| `{arch}` |" + " — |" * 8)
                continue
            greedy, beam = result["greedy"], result["beam"]
            lines.append(
                f"| `{arch}` | {result['loss']:.3f} | {result['ppl']:.2f} "
                f"| {greedy['bleu']:.2f} | {beam['bleu']:.2f} "
                f"| {greedy['bleu_tokenized']:.2f} | {beam['bleu_tokenized']:.2f} "
                f"| {greedy['chrf']:.2f} | {beam['chrf']:.2f} |"
            )
    return "\n".join(lines)


def blocks(run: Run) -> dict[Path, dict[str, str]]:
    """Each file's generated blocks, by name."""
    table = results_table(run)
    return {
        README: {"results": table},
        RESULTS_DOC: {"results": table, "test-sets": per_test_set_tables(run)},
    }


def marked(name: str, content: str) -> str:
    return f"<!-- {name}:start -->\n{content}\n<!-- {name}:end -->"


def block_pattern(name: str) -> re.Pattern[str]:
    return re.compile(rf"<!-- {re.escape(name)}:start -->\n.*?<!-- {re.escape(name)}:end -->", re.S)


def replace_blocks(path: Path, text: str, contents: dict[str, str]) -> str:
    """`text` with each named block's content replaced; a file without the markers is an
    error, not a silent no-op."""
    for name, content in contents.items():
        found = block_pattern(name).search(text)
        if not found:
            raise NMTError(f"{path} has no `<!-- {name}:start -->` … `:end -->` block")
        text = text[: found.start()] + marked(name, content) + text[found.end() :]
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].replace("\n", " "))
    parser.add_argument("--write", action="store_true", help="rewrite the blocks in place")
    parser.add_argument("--root", type=Path, default=Path("."), help="the project folder")
    args = parser.parse_args()
    files = blocks(load_run(args.root))
    if not args.write:
        unique = {name: text for contents in files.values() for name, text in contents.items()}
        print("\n\n".join(marked(name, text) for name, text in unique.items()))
        return
    for path, contents in files.items():
        target = args.root / path
        if not target.is_file():
            raise MissingInput(target)
        write_text(target, replace_blocks(path, target.read_text(encoding="utf-8"), contents))
        print(f"report: rewrote {', '.join(contents)} in {path}")


if __name__ == "__main__":
    run_stage(main, "nothing was written")
