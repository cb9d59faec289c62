"""The source files each dvc.yaml stage loads, found by loading them, and a dvc.yaml that
lists exactly those as its code deps. `python -m tests.stage_deps --write` rewrites each
stage's code deps (its script and the `src/` files it loads, in one sorted block; data deps
and comments stay); tests/test_pipeline.py checks dvc.yaml against it.

A per-architecture stage is one `foreach` entry, so it lists what any of its architectures
loads (`src/nmt/rnn.py`, which the Transformer does not): an edit reruns more than it
affects, never less.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import yaml

ROOT = Path(__file__).resolve().parents[1]
PARAMS = yaml.safe_load((ROOT / "params.yaml").read_text())
ARCHS, VOCABS = tuple(PARAMS["archs"]), tuple(PARAMS["vocabs"])

# Run in one subprocess: heavy libraries are imported once, then each stage script is imported
# in a forked child (and each architecture it runs in a grandchild), which prints the project
# files it loaded. Forks start from a state with no `nmt` module loaded.
LOADED_CODE = """
import importlib, json, os, runpy, sys, traceback
import dvclive, matplotlib.pyplot, pandas, sacrebleu, spacy, torch  # noqa: F401

def report(stage):
    files = sorted(m.__file__ for n, m in list(sys.modules.items())
                   if n.split(".")[0] == "nmt" and getattr(m, "__file__", None))
    print(json.dumps([stage, files]), flush=True)

def in_child(work):
    pid = os.fork()
    if pid == 0:  # the child never returns into the parent's loop
        try:
            work()
        except BaseException:
            traceback.print_exc()
            os._exit(1)
        os._exit(0)
    os.waitpid(pid, 0)

def stage(name, script, items, per_arch):
    runpy.run_path(script, run_name="imported")
    if not items:
        report(name)
    for item in items:
        def load_architecture(item=item):  # as nmt.models.build_model does at run time
            if per_arch:
                importlib.import_module(f"nmt.models.{item}")
            report(f"{name}@{item}")
        in_child(load_architecture)

for name, script, items, per_arch in json.loads(sys.argv[1]):
    in_child(lambda: stage(name, script, items, per_arch))
"""


class Stage(NamedTuple):
    name: str
    script: str
    items: list[str]  # foreach items; none for a single stage
    arch_key: str | None  # how the stage names its architecture (${key}, ${item}), if it has one
    deps: list[str]

    def run_names(self) -> list[str]:
        return [f"{self.name}@{item}" for item in self.items] or [self.name]


def dvc_stages() -> list[Stage]:
    stages = []
    for name, spec in yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"].items():
        body, foreach = spec.get("do", spec), spec.get("foreach")
        if isinstance(foreach, list):  # a list names architectures: `${item}`
            items, arch_key = foreach, "${item}"
        elif foreach == "${archs}":
            items, arch_key = list(ARCHS), "${key}"
        else:
            items, arch_key = list(VOCABS if foreach == "${vocabs}" else ()), None
        script = next(word for word in body["cmd"].split() if word.endswith(".py"))
        stages.append(Stage(name, script, items, arch_key, body["deps"]))
    return stages


def loaded_code(stages: list[Stage]) -> dict[str, set[str]]:
    """Per stage (and foreach item): its script and every project file it loads."""
    work = [(s.name, s.script, s.items, s.arch_key is not None) for s in stages]
    result = subprocess.run(
        [sys.executable, "-c", LOADED_CODE, json.dumps(work)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
        capture_output=True,
        text=True,
        check=True,
    )
    found = {key: set(files) for key, files in map(json.loads, result.stdout.splitlines())}
    missing = {key for s in stages for key in s.run_names()} - set(found)
    if missing:
        raise RuntimeError(f"{', '.join(sorted(missing))} did not load:\n{result.stderr}")
    script = {key: s.script for s in stages for key in s.run_names()}
    return {key: {script[key]} | {relative(f) for f in files} for key, files in found.items()}


def relative(file: str) -> str:
    return str(Path(file).relative_to(ROOT))


def code_deps(stage: Stage, loaded: dict[str, set[str]]) -> list[str]:
    """What the stage must list: what any of its items loads, an architecture's own module
    named by the stage's placeholder; the script first, then the modules sorted."""
    files: set[str] = set()
    for item, key in zip(stage.items or [""], stage.run_names(), strict=True):
        own = f"src/nmt/models/{item}.py"
        named = f"src/nmt/models/{stage.arch_key}.py"
        files |= {named if f == own else f for f in loaded[key]}
    return [stage.script, *sorted(files - {stage.script})]


def is_code(dep: str) -> bool:
    return dep.endswith(".py")


CODE_LINE = re.compile(r"^(\s*)- (\S+\.py)\s*(#.*)?$")


def rewrite(text: str, wanted: dict[str, list[str]]) -> str:
    """dvc.yaml's text with each stage's code deps replaced by `wanted[stage]`, where the
    first of them stood."""
    lines, out, stage = text.splitlines(keepends=True), [], None
    for line in lines:
        header = re.match(r"^  ([a-z_]+):", line)
        if header:
            stage, written = header.group(1), False
        code = CODE_LINE.match(line)
        if stage in wanted and code:
            if not written:
                out += [f"{code.group(1)}- {dep}\n" for dep in wanted[stage]]
                written = True
            continue
        out.append(line)
    return "".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help="rewrite dvc.yaml in place")
    args = parser.parse_args()
    stages = dvc_stages()
    loaded = loaded_code(stages)
    wanted = {s.name: code_deps(s, loaded) for s in stages}
    changed = [s.name for s in stages if set(wanted[s.name]) != set(filter(is_code, s.deps))]
    if args.write:
        (ROOT / "dvc.yaml").write_text(rewrite((ROOT / "dvc.yaml").read_text(), wanted))
    print(f"{'rewrote' if args.write else 'stale'}: {', '.join(changed) or 'none'}")


if __name__ == "__main__":
    main()
