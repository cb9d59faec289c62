"""Stage `settings@<arch>`: what `train@<arch>` and `evaluate@<arch>` read from params.yaml,
resolved (`nmt.settings`), into data/settings/<arch>/train.json and evaluate.json. Each stage
depends on its file rather than on the params, so it reruns exactly when its architecture's
settings change: a shared key that the architecture overrides (`-S model.hid_dim=1024` for
the Transformer) retrains nothing, and a decoding key never retrains."""

from nmt.cli import run_stage, stage_arch
from nmt.config import load_params
from nmt.settings import evaluate_settings, train_settings


def main() -> None:
    arch = stage_arch(__doc__)
    params = load_params()
    for settings in (train_settings(params, arch), evaluate_settings(params, arch)):
        settings.write()
        print(f"settings: {arch}: {settings.path(arch)}")


if __name__ == "__main__":
    run_stage(main)
