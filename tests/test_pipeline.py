"""End to end: the real `dvc repro` in a fresh git + DVC repo, on the real data, tiny models."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from nmt.package import load_model
from nmt.tokenization import read_lines
from nmt.vocab import load_vocab_pair
from tests.stage_deps import ARCHS, VOCABS, code_deps, dvc_stages, is_code, loaded_code, rewrite

ROOT = Path(__file__).resolve().parents[1]
TINY = {
    "batch": {"size": 64},
    "model": {"emb_dim": 8, "hid_dim": 16},
    # The LSTM and GRU set their own dropout: `-S model.dropout` reaches the attention model alone.
    "lstm": {"model": {"n_layers": 2, "dropout": 0.2}},
    "gru": {"model": {"dropout": 0.2}},
    "attention": {"model": {"attn_dim": 8}},
    "transformer": {
        "model": {
            "emb_dim": 16,
            "hid_dim": 16,
            "n_layers": 1,
            "heads": 2,
            "ff_dim": 32,
            "share_embeddings": True,
            "tie_embeddings": True,
            "max_positions": 200,  # test_2018_flickr has a sentence of 125 pieces of 1,000
        },
        "train": {"epochs": 1, "average": 1},  # its recipe's own 50 and 10 otherwise
        "evaluate": {"beam_size": 2},
    },
    "archs": {"transformer": "subwords"},  # the others read words
    "vocabs": {"subwords": {"vocab_size": 1000}},
    "train": {"epochs": 1, "max_batches": 2},
    "evaluate": {
        "test_sets": ["test_2016_flickr", "test_2018_flickr"],
        "beam_size": 2,
        "max_len": 8,
        "heatmaps": 2,
    },
}
TEST_SIZES = {"test_2016_flickr": 1000, "test_2018_flickr": 1071}
SCORES = ("bleu", "bleu_lowercase", "bleu_tokenized", "chrf")


def merge(base: dict, over: dict) -> dict:
    return {
        k: merge(base[k], v) if isinstance(v, dict) and isinstance(base.get(k), dict) else v
        for k, v in {**base, **over}.items()
    }


def run(project: Path, env: dict, *args: str) -> str:
    result = subprocess.run(args, cwd=project, env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"{' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout + result.stderr


def package_bytes(folder: Path) -> dict[str, bytes]:
    """Every file of a model package, by its path inside the package."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def flat_keys(tree: dict, prefix: str = "") -> list[str]:
    """The keys of a nested mapping's leaves, dotted: `dvc exp show`'s columns."""
    return [
        leaf
        for key, value in tree.items()
        for leaf in (
            flat_keys(value, f"{prefix}{key}.") if isinstance(value, dict) else [prefix + key]
        )
    ]


def stages_run(output: str) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", output))


def test_every_stage_lists_exactly_the_code_it_loads_as_deps():
    """A module a stage loads but does not list would change results while `dvc repro` says
    everything is up to date; a listed one it does not load reruns the stage for nothing."""
    stages = dvc_stages()
    loaded = loaded_code(stages)
    problems = []
    for stage in stages:
        listed, wanted = {d for d in stage.deps if is_code(d)}, set(code_deps(stage, loaded))
        problems += [f"{stage.name} loads {f}, not in its deps" for f in sorted(wanted - listed)]
        problems += [f"{stage.name} lists {f}, never loaded" for f in sorted(listed - wanted)]
    assert not problems, "\n".join([*problems, "fix: python -m tests.stage_deps --write"])


def test_the_deps_writer_lists_what_it_found_and_keeps_the_rest():
    text = (ROOT / "dvc.yaml").read_text()
    stages = dvc_stages()
    wanted = {s.name: [s.script, "src/nmt/new.py"] for s in stages}
    written = yaml.safe_load(rewrite(text, wanted))["stages"]
    for stage in stages:
        body = written[stage.name].get("do", written[stage.name])
        assert [d for d in body["deps"] if is_code(d)] == wanted[stage.name]
        assert [d for d in body["deps"] if not is_code(d)] == [
            d for d in stage.deps if not is_code(d)
        ]
    assert rewrite(text, {}) == text


def tiny_project(project: Path, mirror: Path) -> dict:
    """A git + DVC repo of this project's pipeline with the TINY params; the environment to
    run in it."""
    for name in ("dvc.yaml", ".gitignore", ".dvcignore"):
        shutil.copy(ROOT / name, project / name)
    for folder in ("stages", "src", "bench"):
        shutil.copytree(
            ROOT / folder, project / folder, ignore=shutil.ignore_patterns("__pycache__")
        )
    params = merge(yaml.safe_load((ROOT / "params.yaml").read_text()), TINY)
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = {
        **os.environ,
        "MULTI30K_MIRROR": str(mirror),
        "DVC_NO_ANALYTICS": "1",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "GIT_AUTHOR_NAME": "test",
        "GIT_AUTHOR_EMAIL": "test@example.org",
        "GIT_COMMITTER_NAME": "test",
        "GIT_COMMITTER_EMAIL": "test@example.org",
    }
    run(project, env, "git", "init", "-q")
    run(project, env, "dvc", "init", "-q")
    run(project, env, "git", "add", "-A")
    run(project, env, "git", "commit", "-qm", "tiny project")
    return env


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, mirror: Path) -> tuple[Path, dict]:
    project = tmp_path_factory.mktemp("project")
    return project, tiny_project(project, mirror)


@pytest.mark.slow
def test_repro_builds_everything_then_nothing_then_only_what_changed(project):
    root, env = project
    data_stages = {"download", "tokenize"}
    data_stages |= {f"{stage}@{vocab}" for stage in ("vocab", "numericalize") for vocab in VOCABS}
    every = data_stages | {"curves"}
    per_arch = ("settings", "train", "evaluate", "heatmaps")
    every |= {f"{stage}@{arch}" for stage in per_arch for arch in ARCHS}
    every |= {"export@transformer"}
    timed = run(root, env, "python", "bench/repro_time.py", "--out", "repro_time.json")
    assert stages_run(timed) == every  # dvc repro, timed: the time of each stage it ran
    times = json.loads((root / "repro_time.json").read_text())
    assert set(times["stages"]) == every and min(times["stages"].values()) > 0
    assert sum(times["stages"].values()) <= times["total_seconds"]

    words = json.loads((root / "results/data_words.json").read_text())
    assert words["vocab_size"] == {"de": 7853, "en": 5893}
    assert words["splits"]["train"]["pairs"] == 29000
    assert 0 < words["train_padding_ratio"] < 0.2
    subwords = json.loads((root / "results/data_subwords.json").read_text())
    assert subwords["vocab_size"] == {"de": 1000, "en": 1000}
    assert subwords["splits"]["train"]["pairs"] == 29000
    assert subwords["splits"]["test_2016_flickr"]["src_unknown"] == 0  # words: 100s of <unk>
    assert words["splits"]["test_2016_flickr"]["src_unknown"] > 100
    params = yaml.safe_load((root / "params.yaml").read_text())
    for arch in ARCHS:
        pipeline = load_vocab_pair(root / "data/vocab" / params["archs"][arch], "de", "en")
        loaded = load_model(root / f"models/{arch}", arch)
        model, vocabs, config = loaded.model, loaded.vocabs, loaded.config
        assert [v.tokens for v in vocabs] == [v.tokens for v in pipeline]  # packaged along
        metrics = json.loads((root / f"metrics/train_{arch}.json").read_text())
        assert metrics["parameters"] == model.n_parameters()
        assert metrics["epochs"] == config.trained.epoch == 1
        assert config.model.hid_dim == 16 and config.vocab == params["archs"][arch]
        assert torch.isfinite(torch.tensor(metrics["best_valid_loss"]))
        curve = (root / f"dvclive/{arch}/plots/metrics/valid/loss.tsv").read_text().splitlines()
        assert curve[0] == "step\tloss" and len(curve) == 2  # a header and epoch 1
        evaluation = json.loads((root / f"results/eval_{arch}.json").read_text())
        assert set(evaluation) == {*TEST_SIZES, "signatures"}
        first = evaluation["test_2016_flickr"]  # what experiments are compared by: a few
        assert json.loads((root / f"metrics/eval_{arch}.json").read_text()) == {
            "test_2016_flickr": {
                **{key: first[key] for key in ("loss", "ppl")},
                **{key: first["beam"][key] for key in ("bleu", "bleu_tokenized", "chrf")},
            }
        }
        for name, size in TEST_SIZES.items():
            assert set(evaluation[name]) == {"loss", "ppl", "greedy", "beam"}
            for search in ("greedy", "beam"):
                assert set(evaluation[name][search]) == set(SCORES)
            assert evaluation[name]["ppl"] == pytest.approx(math.exp(evaluation[name]["loss"]))
            lines = (root / f"translations/{arch}/{name}.txt").read_text().split("\n")
            assert len(lines) == size + 1 and lines[-1] == ""
    first = "".join(f"{line}\n" for line in read_lines(root / "data/raw/test_2016_flickr.de")[:40])
    for arch in ARCHS:  # a user's `translate` prints what evaluation measured, line for line
        printed = subprocess.run(
            ["translate", "--arch", arch],
            input=first,
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        evaluated = (root / f"translations/{arch}/test_2016_flickr.txt").read_text()
        assert printed.stdout.split("\n")[:40] == evaluated.split("\n")[:40], arch
        assert printed.stderr == "", printed.stderr
    # Shared source and target embeddings, tied to the output layer: one 1000 x 16 matrix.
    assert model.src_embedding.weight.shape == (1000, 16)
    assert model.src_embedding.weight is model.trg_embedding.weight is model.out.weight
    stored = load_file(root / "models/transformer/model.safetensors")
    assert len({"src_embedding.weight", "trg_embedding.weight", "out.weight"} & set(stored)) == 1
    result = subprocess.run(
        ["translate", "--arch", "transformer", "--beam", "1", "Zwei Mädchen essen Spätzle."],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "<unk>" not in result.stdout and "⁇" not in result.stdout and "▁" not in result.stdout
    assert zipfile.is_zipfile(root / "exports/transformer/nmt-de_en.argosmodel")  # Argos's
    elsewhere = root.parent / "elsewhere"  # the exported model, alone, outside the project
    shutil.copytree(root / "exports/transformer", elsewhere / "ct2")
    fast = subprocess.run(
        ["translate", "--engine", "ctranslate2", "--model", "ct2", "--beam", "1"],
        input="Zwei Mädchen essen Spätzle.\n",
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert fast.stdout == result.stdout  # float32: the same greedy translation
    heatmaps = sorted((root / "plots/attention").iterdir())
    assert [p.name for p in heatmaps] == ["test_2016_flickr_0.png", "test_2016_flickr_1.png"]
    heatmaps += sorted((root / "plots/transformer").iterdir())
    for arch in ("lstm", "gru"):  # no attention: an empty folder
        assert list((root / "plots" / arch).iterdir()) == []
    assert len(heatmaps) == 4 and all(p.read_bytes()[:4] == b"\x89PNG" for p in heatmaps)
    shown = json.loads(run(root, env, "dvc", "plots", "show", "--json"))["data"]
    for path in heatmaps:
        assert shown[str(path.relative_to(root))][0]["type"] == "image"
    assert "dvclive/gru/plots/metrics/valid/loss.tsv" in shown
    assert shown["plots/curves.png"][0]["type"] == "image"
    assert (root / "plots/curves.png").read_bytes()[:4] == b"\x89PNG"

    run(root, env, "git", "add", "-A")
    run(root, env, "git", "commit", "-qm", "tiny results")
    fresh = root.parent / "fresh"  # what a user sees in a fresh clone, before `dvc pull`
    run(root.parent, env, "git", "clone", "-q", str(root), str(fresh))
    status = run(fresh, env, "dvc", "status")
    assert "not in cache" in status and "modified" not in status, status  # only missing cache
    for arch in ARCHS:  # the curves are in git: a clone without the cache can draw them
        name = f"dvclive/{arch}/plots/metrics/valid/loss.tsv"
        assert (fresh / name).read_text() == (root / name).read_text(), name
    assert stages_run(run(root, env, "dvc", "repro")) == set()

    model = package_bytes(root / "models/gru")
    shutil.rmtree(root / "models/gru")  # a lost output comes back from the cache
    run(root, env, "dvc", "checkout", "train@gru", "evaluate@gru")  # its files' stages
    assert package_bytes(root / "models/gru") == model
    assert stages_run(run(root, env, "dvc", "repro")) == set()
    shutil.rmtree(root / "models/gru")  # or is rewritten from the finished run's checkpoint,
    resumed = run(
        root, env, "python", "bench/repro_time.py", "--out", "repro_time.json", "--resume"
    )
    # byte for byte, so nothing downstream reruns; evaluate@gru writes its decoding.json again
    assert stages_run(resumed) == {"train@gru", "evaluate@gru"}
    assert package_bytes(root / "models/gru") == model
    again = json.loads((root / "repro_time.json").read_text())  # a second segment, summed
    assert again["complete"] and [s["stages"] for s in again["segments"][:1]] == [times["stages"]]
    added = again["segments"][1]["stages"]
    assert added["train@gru"] > 0 and added["train@lstm"] == 0  # skipped: 0 s
    assert again["stages"]["train@gru"] == pytest.approx(
        times["stages"]["train@gru"] + added["train@gru"], abs=0.2
    )
    assert again["total_seconds"] == pytest.approx(
        times["total_seconds"] + again["segments"][1]["seconds"]
    )

    clone = root.parent / "clone"  # a clean checkout with a populated cache rebuilds nothing
    run(root.parent, env, "git", "clone", "-q", str(root), str(clone))
    run(clone, env, "dvc", "cache", "dir", "--local", str(root / ".dvc/cache"))
    run(clone, env, "dvc", "checkout", "-q")
    assert stages_run(run(clone, env, "dvc", "repro")) == set()
    for name in ("metrics/eval_attention.json", "translations/gru/test_2016_flickr.txt"):
        assert (clone / name).read_bytes() == (root / name).read_bytes()

    out = run(root, env, "dvc", "exp", "run", "-S", "attention.model.attn_dim=12")
    stages = ("settings", "train", "evaluate", "heatmaps")
    assert stages_run(out) == {f"{s}@attention" for s in stages} | {"curves"}
    out = run(root, env, "dvc", "exp", "run", "-S", "model.dropout=0.4")  # read by attention only
    resolved = {f"settings@{arch}" for arch in ARCHS}  # each resolves it; one file changes
    assert stages_run(out) == resolved | {f"{s}@attention" for s in stages[1:]} | {"curves"}
    out = run(root, env, "dvc", "exp", "run", "-S", "transformer.train.label_smoothing=0.2")
    stages = ("settings", "train", "evaluate", "heatmaps", "export")
    assert stages_run(out) == {f"{s}@transformer" for s in stages} | {"curves"}

    out = run(root, env, "dvc", "exp", "run", "-S", "evaluate.beam_size=3")
    decoded = {"lstm", "gru", "attention"}  # the Transformer's own beam_size overrides it
    reread = {f"{stage}@{arch}" for stage in ("evaluate", "heatmaps") for arch in decoded}
    assert stages_run(out) == resolved | reread  # and no training
    diff = json.loads(run(root, env, "dvc", "metrics", "diff", "--json"))
    changed = {key for name, values in diff.items() if "eval_" in name for key in values}
    assert changed & {"test_2016_flickr.bleu", "test_2016_flickr.chrf"}  # beam results moved
    assert "metrics/train_gru.json" not in diff and "metrics/train_lstm.json" not in diff
    out = run(root, env, "dvc", "exp", "run", "-S", "+gru.evaluate.beam_size=3")
    assert stages_run(out) == {"settings@gru"}  # the beam size it already had: no decoding
    out = run(root, env, "dvc", "exp", "run", "-S", "gru.evaluate.beam_size=4")
    one = {"settings@gru", "evaluate@gru", "heatmaps@gru"}  # one architecture's decoding
    assert stages_run(out) == one

    run(root, env, "git", "checkout", "-q", "--", ".")  # back to the committed tiny results
    run(root, env, "dvc", "checkout", "-q")
    failed = subprocess.run(
        ["dvc", "exp", "run", "-S", "+gru.model.hid_dim=-5"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert failed.returncode != 0 and "Traceback" not in failed.stderr
    advice = "`git checkout -- metrics results logs && dvc checkout` restores the committed ones"
    assert "gru.model.hid_dim must be >= 1, got -5 (DVC removed settings@gru's" in failed.stderr
    assert advice in failed.stderr and (root / "models/gru").is_dir()  # stopped before training
    run(root, env, "git", "checkout", "-q", "--", "params.yaml", "metrics", "results", "logs")
    run(root, env, "dvc", "checkout", "-q")
    assert package_bytes(root / "models/gru") == model
    assert stages_run(run(root, env, "dvc", "repro")) == set()

    # A recipe experiment logged from val alone, the committed params.yaml and dvc.lock back.
    (root / "docs").mkdir()
    shutil.copy(ROOT / "docs/experiments.md", root / "docs/experiments.md")
    args = ("-n", "wider", "-S", "+gru.model.hid_dim=24", "--beams", "1", "2", "--alphas", "0.6")
    out = run(root, env, "python", "bench/experiment.py", "gru", *args)
    assert stages_run(out) == {"settings@gru", "train@gru"}  # no test set is read
    logged = json.loads((root / "bench/results/experiments/wider.json").read_text())
    assert {row["beam_size"] for row in logged["val"]} == {1, 2}
    assert logged["train"]["epochs"] == 1 and logged["train"]["kept"] == "1"
    log = (root / "docs/experiments.md").read_text().splitlines()
    rows = [line for line in log if "`wider`" in line]
    assert len(rows) == 1 and "+gru.model.hid_dim=24 train@gru" in rows[0]
    assert run(root, env, "git", "status", "--porcelain", "params.yaml", "dvc.lock") == ""
    shutil.rmtree(root / "docs")
    shutil.rmtree(root / "bench/results/experiments")
    run(root, env, "dvc", "checkout", "-q")
    assert package_bytes(root / "models/gru") == model

    args = ("dvc", "exp", "run", "-S", "vocabs.words.min_freq=3", "numericalize@words")
    assert stages_run(run(root, env, *args)) == {"vocab@words", "numericalize@words"}
    assert json.loads((root / "results/data_words.json").read_text())["vocab_size"]["de"] < 7853
    # Every stage of an architecture reading words is stale now, and no other (curves follows
    # the train stages); running them would only repeat what the experiments above showed.
    stale = set(json.loads(run(root, env, "dvc", "status", "--json")))
    word_archs = [arch for arch in ARCHS if params["archs"][arch] == "words"]
    assert "transformer" not in word_archs
    assert stale == {
        f"{s}@{arch}" for s in ("train", "evaluate", "heatmaps") for arch in word_archs
    }

    # `dvc exp show` columns: a few metrics per architecture, no data statistics or timings.
    shown = next(iter(json.loads(run(root, env, "dvc", "metrics", "show", "--json")).values()))[
        "data"
    ]
    assert set(shown) == {f"metrics/{s}_{arch}.json" for s in ("train", "eval") for arch in ARCHS}
    assert all(len(flat_keys(m["data"])) <= 8 for m in shown.values())


@pytest.mark.slow
def test_speed_benchmark_runs_on_the_pipeline_data(project):
    root, env = project
    run(
        root,
        env,
        "python",
        "bench/train_speed.py",
        "--batches",
        "1",
        "--warmup",
        "0",
        "--archs",
        "gru",
        "--out",
        "bench.json",
    )
    result = json.loads((root / "bench.json").read_text())
    gru = result["archs"]["gru"]
    assert gru["batches"] == 1 and gru["target_tokens"] > 0
    assert gru["speedup"] == pytest.approx(
        gru["ours_tokens_per_second"] / gru["reference_tokens_per_second"]
    )
    assert 0 < gru["ours_mfu"] < 1 and result["matmul_peak_flops"] > 0
    assert 0 < gru["ours_kernel_share"] < 1
    assert gru["kernel_bound_speedup"] == pytest.approx(gru["speedup"] / gru["ours_kernel_share"])


@pytest.mark.slow
def test_rows_side_by_side_are_the_train_stage_with_their_own_settings(project):
    """bench/search_rows.py: a row at the committed settings trains the model `dvc repro`
    keeps, byte for byte; a row with R-Drop and subword sampling trains another; both are
    scored on val."""
    root, env = project
    run(root, env, "git", "checkout", "-q", "--", ".")  # the committed params
    run(root, env, "dvc", "repro", "-q", "train@transformer")  # built, or from the cache
    regularised = ("transformer.train.rdrop_alpha=1", "transformer.train.subword_sampling=0.1")
    args = ("--out", "rows", "--beams", "1", "--alphas", "0.6", "--row", "base")
    out = run(
        root,
        env,
        "python",
        "bench/search_rows.py",
        "transformer",
        *args,
        "--row",
        "regularised",
        *regularised,
    )
    records = json.loads((root / "rows/rows.json").read_text())["rows"]
    assert [r["name"] for r in records] == ["base", "regularised"]
    assert all(r["exit"] == 0 and r["val"][0]["beam_size"] == 1 for r in records), out
    assert records[1]["settings"] == list(regularised)
    base, other = (
        package_bytes(root / "rows" / name / "models/transformer")
        for name in ("base", "regularised")
    )
    trained = package_bytes(root / "models/transformer")
    del trained["decoding.json"]  # evaluate@transformer's: a row is scored at many settings
    assert base == trained
    assert other["model.safetensors"] != base["model.safetensors"]


@pytest.mark.slow
def test_two_process_training_and_a_queued_sweep(project):
    root, env = project
    run(root, env, "git", "checkout", "-q", "--", ".")  # the committed tiny results
    run(root, env, "dvc", "checkout", "-q")
    out = run(root, env, "dvc", "exp", "run", "-S", "+gru.train.processes=2")
    assert stages_run(out) == {
        f"{s}@gru" for s in ("settings", "train", "evaluate", "heatmaps")
    } | {"curves"}
    assert out.count("trainable parameters") == 1  # only the main rank prints
    assert out.count("starting afresh") == 1  # the committed 1-process run's last.pt
    assert json.loads((root / "metrics/train_gru.json").read_text())["epochs"] == 1
    assert len(torch.load(root / "checkpoints/gru/last.pt", weights_only=True)["torch_rng"]) == 2

    run(root, env, "git", "checkout", "-q", "--", ".")
    run(root, env, "dvc", "checkout", "-q")
    for dim in (6, 10):
        run(
            root,
            env,
            "dvc",
            "exp",
            "run",
            "--queue",
            "-n",
            f"attn-{dim}",
            "-S",
            f"attention.model.attn_dim={dim}",
        )
    # An experiment queued with a code change runs that code, not the workspace's (restored).
    module = root / "src/nmt/models/attention.py"
    code = module.read_text()
    module.write_text(f"{code}\nraise SystemExit('the queued code ran')\n")
    run(root, env, "dvc", "exp", "run", "--queue", "-n", "own-code")
    module.write_text(code)
    subprocess.run(
        ["dvc", "queue", "start", "-j", "2"],
        cwd=root,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=True,
    )
    for _ in range(300):
        status = run(root, env, "dvc", "queue", "status")
        if not re.search(r"\b(Queued|Running)\b", status):
            break
        time.sleep(2)
    assert re.search(r"attn-6 .* Success", status) and re.search(r"attn-10 .* Success", status)
    assert re.search(r"own-code .* Failed", status), status
    assert "the queued code ran" in run(root, env, "dvc", "queue", "logs", "own-code")
    diff = json.loads(run(root, env, "dvc", "exp", "diff", "attn-6", "attn-10", "--json"))
    assert diff["params"] == {
        "params.yaml": {"attention.model.attn_dim": {"old": 6, "new": 10, "diff": 4}}
    }
    assert set(diff["metrics"]) == {"metrics/eval_attention.json", "metrics/train_attention.json"}
    # Each attention unit: a row of the energy layer (encoder 2 x 16 + decoder 16, bias), v.
    assert diff["metrics"]["metrics/train_attention.json"]["parameters"]["diff"] == 4 * 50
